"""Every /v1 request the sandbox received, oldest first, for tests to assert on what went over the
wire: ``state.requests`` in-process, ``GET /sandbox/requests`` over HTTP."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from stripe_sandbox.errors import StripeApiError
from stripe_sandbox.forms import Params, decode_form

__all__ = ["LoggedRequest", "RequestLog"]

# The headers that say how a client talks to Stripe; the rest (host, length...) is noise.
_KEPT_HEADERS = (
    "authorization",
    "content-type",
    "idempotency-key",
    "stripe-account",
    "stripe-version",
    "user-agent",
)


@dataclass
class LoggedRequest:
    method: str
    path: str
    body: str
    """The form-encoded body of a POST, the query string of a GET, exactly as sent."""
    headers: dict[str, str]
    """Lower-cased names; an API key that is not a test key is masked."""
    request_id: str
    idempotency_key: str | None
    fault: str | None = None
    """The scripted fault that answered this request, if any."""
    status: int | None = None
    """The status answered; None while in flight, or when the connection was dropped or hung."""

    @cached_property
    def params(self) -> Params:
        """``body`` decoded as the API reads it (nested dicts and lists); empty if it did not
        parse. Decoded when first asked for: the call itself decodes its own copy, and most
        entries are never read (a Checkout Session's form decoded twice was 15 % of the
        sandbox's CPU per call)."""
        try:
            return decode_form(self.body)
        except StripeApiError:
            return {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "body": self.body,
            "params": self.params,
            "headers": self.headers,
            "request_id": self.request_id,
            "idempotency_key": self.idempotency_key,
            "fault": self.fault,
            "status": self.status,
        }


@dataclass
class RequestLog:
    """The last ``max_entries`` requests, and how many the sandbox held at once."""

    max_entries: int = 10_000
    in_flight: int = 0
    max_in_flight: int = 0
    _entries: deque[LoggedRequest] = field(init=False)

    def __post_init__(self) -> None:
        self._entries = deque(maxlen=self.max_entries)

    def __iter__(self) -> Iterator[LoggedRequest]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> LoggedRequest:
        return self._entries[index]

    def record(
        self, method: str, path: str, body: str, headers: Mapping[str, str], request_id: str
    ) -> LoggedRequest:
        kept = {name: headers[name] for name in _KEPT_HEADERS if name in headers}
        if "authorization" in kept:
            kept["authorization"] = _masked(kept["authorization"])
        entry = LoggedRequest(
            method=method,
            path=path,
            body=body,
            headers=kept,
            request_id=request_id,
            idempotency_key=headers.get("idempotency-key"),
        )
        self._entries.append(entry)
        return entry

    def matching(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        return [
            entry
            for entry in self._entries
            if (method is None or entry.method == method) and (path is None or entry.path == path)
        ]

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Counts the request as in flight while the sandbox works on it."""
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1

    def clear(self) -> None:
        """Forgets the requests and starts counting ``max_in_flight`` again."""
        self._entries.clear()
        self.max_in_flight = self.in_flight


def _masked(authorization: str) -> str:
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() == "bearer" and key.startswith("sk_test_"):
        return authorization
    return f"{scheme} ****" if key else "****"
