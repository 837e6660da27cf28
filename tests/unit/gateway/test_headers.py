from __future__ import annotations

from gateway.headers import Identity, request_headers, response_headers


def forwarded(
    client: list[tuple[bytes, bytes]], identity: Identity | None = None
) -> list[tuple[bytes, bytes]]:
    return request_headers(
        client,
        identity=identity,
        internal_token=b"internal",
        client_address=b"203.0.113.7",
        request_id=b"rid-1",
    )


def test_client_identity_credential_and_forwarding_headers_are_replaced() -> None:
    headers = forwarded(
        [
            (b"x-user-id", b"spoofed"),
            (b"x-user-email", b"spoofed@example.com"),
            (b"x-user-anything", b"1"),
            (b"x-internal-token", b"guess"),
            (b"x-forwarded-for", b"6.6.6.6"),
            (b"x-forwarded-proto", b"https"),
            (b"forwarded", b"for=6.6.6.6"),
            (b"x-request-id", b"client-chosen"),
            (b"host", b"gateway.example"),
            (b"accept", b"application/json"),
        ],
        Identity("user-1", "u@example.com"),
    )
    assert headers == [
        (b"accept", b"application/json"),
        (b"x-user-id", b"user-1"),
        (b"x-user-email", b"u@example.com"),
        (b"x-internal-token", b"internal"),
        (b"x-request-id", b"rid-1"),
        (b"x-forwarded-for", b"203.0.113.7"),
    ]


def test_public_route_carries_no_identity() -> None:
    names = [name for name, _ in forwarded([(b"x-user-id", b"spoofed")])]
    assert b"x-user-id" not in names
    assert b"x-internal-token" in names


def test_hop_by_hop_and_connection_named_headers_are_removed_from_requests() -> None:
    headers = forwarded(
        [
            (b"connection", b"keep-alive, X-Hop"),
            (b"x-hop", b"1"),
            (b"keep-alive", b"timeout=5"),
            (b"te", b"trailers"),
            (b"trailer", b"x"),
            (b"transfer-encoding", b"chunked"),
            (b"upgrade", b"websocket"),
            (b"proxy-authorization", b"Basic x"),
            (b"content-type", b"application/json"),
            (b"authorization", b"Bearer a.b.c"),
        ]
    )
    kept = [name for name, _ in headers]
    assert kept[:2] == [b"content-type", b"authorization"]
    assert not set(kept) & {
        b"connection",
        b"x-hop",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
    }


def test_response_headers_lose_hop_by_hop_and_server_owned_ones() -> None:
    headers = response_headers(
        [
            (b"Content-Type", b"application/json"),
            (b"Content-Length", b"2"),
            (b"Connection", b"close, X-Secret"),
            (b"X-Secret", b"1"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Proxy-Authenticate", b"Basic"),
            (b"Date", b"Mon"),
            (b"Server", b"uvicorn"),
            (b"X-Request-ID", b"upstream"),
            (b"X-Internal-Token", b"leak"),
            (b"Set-Cookie", b"a=1"),
            (b"Set-Cookie", b"b=2"),
        ]
    )
    assert headers == [
        (b"content-type", b"application/json"),
        (b"content-length", b"2"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]
