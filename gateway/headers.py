"""Header hygiene at the edge, both ways, on raw ASGI header pairs (lower-case bytes).

Towards a private service, the client may not choose its identity, the internal credential, the
forwarded-for address or the request id: those are removed and set by the gateway. Hop-by-hop
headers (RFC 9110 §7.6.1) and any header the ``Connection`` header names never cross the gateway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["HOP_BY_HOP", "Identity", "request_headers", "response_headers"]

Header = tuple[bytes, bytes]

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
# Set by the gateway itself; a client-sent value must never reach a private service.
# ``Expect: 100-continue`` was already answered by our own server; forwarded, it would make the
# upstream send an interim 1xx answer.
_REQUEST_OWNED = frozenset({b"x-internal-token", b"x-request-id", b"host", b"forwarded", b"expect"})
_REQUEST_OWNED_PREFIXES = (b"proxy-", b"x-user-", b"x-forwarded-")
# The ASGI server and the request id middleware write their own; never leak the credential.
_RESPONSE_OWNED = frozenset({b"date", b"server", b"x-request-id", b"x-internal-token"})
_RESPONSE_OWNED_PREFIXES = (b"proxy-", b"x-user-")
_REQUEST_DROPPED = HOP_BY_HOP | _REQUEST_OWNED
_RESPONSE_DROPPED = HOP_BY_HOP | _RESPONSE_OWNED


class Identity:
    """The caller as verified by auth, ready to be sent as headers."""

    __slots__ = ("email", "headers", "user_id")

    def __init__(self, user_id: str, email: str) -> None:
        self.user_id = user_id
        self.email = email
        self.headers: tuple[Header, ...] = (
            (b"x-user-id", user_id.encode()),
            (b"x-user-email", email.encode()),
        )


def _kept(
    headers: Iterable[Header], dropped: frozenset[bytes], prefixes: tuple[bytes, ...]
) -> list[Header]:
    """``headers`` less those named in ``dropped``, those whose name starts with one of
    ``prefixes``, and those a ``Connection`` header among them names: one pass (this runs twice
    for every forwarded request), and a second only when a ``Connection`` header named one not
    dropped already."""
    kept: list[Header] = []
    named: set[bytes] = set()
    for header in headers:
        name = header[0]
        if name in dropped or name.startswith(prefixes):
            if name == b"connection":
                for token in header[1].lower().split(b","):
                    token = token.strip()
                    if token not in dropped:  # (``keep-alive`` is gone already)
                        named.add(token)
            continue
        kept.append(header)
    if named:
        kept = [header for header in kept if header[0] not in named]
    return kept


def request_headers(
    client_headers: Iterable[Header],
    *,
    identity: Identity | None,
    internal_token: bytes,
    client_address: bytes,
    request_id: bytes,
) -> list[Header]:
    """The headers a private service receives for one client request."""
    kept = _kept(client_headers, _REQUEST_DROPPED, _REQUEST_OWNED_PREFIXES)
    if identity is not None:
        kept.extend(identity.headers)
    kept.append((b"x-internal-token", internal_token))
    kept.append((b"x-request-id", request_id))
    if client_address:
        kept.append((b"x-forwarded-for", client_address))
    return kept


def response_headers(upstream_headers: Sequence[Header], *, lowered: bool = False) -> list[Header]:
    """The headers the client receives from a private service's answer (names lower-cased;
    ``lowered``: they already are, as ``shared.ConnectionPool`` gives them)."""
    if not lowered:
        upstream_headers = [(name.lower(), value) for name, value in upstream_headers]
    return _kept(upstream_headers, _RESPONSE_DROPPED, _RESPONSE_OWNED_PREFIXES)
