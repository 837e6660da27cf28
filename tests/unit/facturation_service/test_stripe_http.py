"""The HTTP client under the Stripe SDK, against raw loopback servers that answer as scripted.
(The connection pool it carries requests with is proven in tests/unit/shared/test_http1.py.)"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import stripe
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from facturation_service.stripe_api import problem_from_stripe_error
from facturation_service.stripe_http import StripeHttpClient, stripe_http_client
from shared import (
    BadGatewayError,
    GatewayTimeoutError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamTimeoutError,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
JSON_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nRequest-Id: req_1\r\n"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request's head and body (framed by Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


def answer(body: bytes, *, extra: bytes = b"") -> bytes:
    return JSON_OK + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


@asynccontextmanager
async def serving(
    handler: Handler, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback server; yields its URL and the count of connections it accepted."""
    accepted: list[int] = []

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(counted, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield (f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}"), accepted
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def stripe_client(timeout_seconds: float) -> AsyncIterator[StripeHttpClient]:
    """The client under test, its connections closed after the block."""
    client = StripeHttpClient(timeout_seconds=timeout_seconds)
    try:
        yield client
    finally:
        await client.close_async()


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        head, body = await read_request(reader)
        writer.write(answer(b'{"head":%d,"body":"%s"}' % (len(head), body)))
        await writer.drain()


async def test_an_answer_comes_back_whole_with_headers_read_in_any_case() -> None:
    async with serving(keep_answering) as (url, _), stripe_client(5) as client:
        content, status, headers = await client.request_async(
            "post", f"{url}/v1/checkout/sessions", {"Idempotency-Key": "k"}, "a=1&b=2"
        )
    assert status == 200
    assert content.endswith(b'"body":"a=1&b=2"}')
    assert headers["request-id"] == headers["Request-Id"] == "req_1"
    assert "REQUEST-ID" in headers
    assert "stripe-should-retry" not in headers


async def test_requests_one_after_another_share_one_connection() -> None:
    async with serving(keep_answering) as (url, accepted), stripe_client(5) as client:
        for _ in range(5):
            _, status, _ = await client.request_async("get", f"{url}/v1/customers/cus_1", {})
            assert status == 200
    assert len(accepted) == 1


async def test_a_burst_keeps_its_connections_for_the_next_one() -> None:
    """Every connection a burst of concurrent requests opened is kept (within its idle time):
    the next burst opens none, where httpx's 20 kept made each burst of 60 open 40 again."""
    burst = 60

    async def slow_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await asyncio.sleep(0.05)  # every request of the burst is in flight at once
            writer.write(answer(b"{}"))
            await writer.drain()

    async with serving(slow_answers) as (url, accepted), stripe_client(5) as client:
        for _ in range(3):
            answers = await asyncio.gather(
                *(client.request_async("post", f"{url}/v1/x", {}, "a=1") for _ in range(burst))
            )
            assert [status for _, status, _ in answers] == [200] * burst
    assert len(accepted) == burst


async def test_a_kept_alive_connection_stripe_closed_is_replaced_without_an_error() -> None:
    async def one_answer_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        # Says keep-alive, closes anyway: as a server whose idle timeout just passed.
        writer.write(answer(b"{}"))
        await writer.drain()

    async with serving(one_answer_then_close) as (url, accepted), stripe_client(5) as client:
        for _ in range(3):
            _, status, _ = await client.request_async("post", f"{url}/v1/x", {}, "a=1")
            assert status == 200
            await asyncio.sleep(0.05)
    assert len(accepted) == 3


async def test_no_answer_in_time_is_a_retryable_timeout_the_client_sees_as_504() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with serving(silent) as (url, _), stripe_client(0.2) as client:
        with pytest.raises(stripe.APIConnectionError) as raised:
            await client.request_async("post", f"{url}/v1/x", {}, "a=1")
    assert raised.value.should_retry
    assert isinstance(raised.value.__cause__, UpstreamTimeoutError)
    assert isinstance(problem_from_stripe_error(raised.value), GatewayTimeoutError)


async def test_a_refused_connection_is_a_retryable_error_the_client_sees_as_502() -> None:
    async with serving(keep_answering) as (url, _):
        pass  # closed: nothing listens on its port any more
    async with stripe_client(2) as client:
        with pytest.raises(stripe.APIConnectionError) as raised:
            await client.request_async("get", f"{url}/v1/x", {})
    assert raised.value.should_retry
    assert isinstance(raised.value.__cause__, UpstreamConnectError)
    assert isinstance(problem_from_stripe_error(raised.value), BadGatewayError)


async def test_a_header_value_with_a_line_break_is_never_sent() -> None:
    async with serving(keep_answering) as (url, accepted), stripe_client(2) as client:
        with pytest.raises(stripe.APIConnectionError) as raised:
            await client.request_async("get", f"{url}/v1/x", {"Idempotency-Key": "a\r\nX: 1"})
    assert accepted == []
    assert isinstance(raised.value.__cause__, UpstreamError)


async def test_the_sdk_retries_a_5xx_through_it_with_the_same_idempotency_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys: list[bytes] = []

    async def fail_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            keys.extend(
                line.split(b": ", 1)[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"idempotency-key:")
            )
            if len(keys) == 1:
                body = b'{"error":{"type":"api_error","message":"boom"}}'
                writer.write(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
            else:
                writer.write(answer(b'{"id":"cs_1","object":"checkout.session"}'))
            await writer.drain()

    async with serving(fail_once) as (url, _):
        http_client = StripeHttpClient(timeout_seconds=5)
        monkeypatch.setattr(http_client, "_sleep_time_seconds", lambda _retries: 0.0)
        client = stripe.StripeClient(
            "sk_test_x",
            http_client=http_client,
            max_network_retries=1,
            base_addresses={"api": url},
        )
        try:
            response = await client.raw_request_async(
                "post", "/v1/checkout/sessions", idempotency_key="checkout-session:o1", mode="x"
            )
        finally:
            await http_client.close_async()
    assert response.data == {"id": "cs_1", "object": "checkout.session"}
    assert keys == [b"checkout-session:o1", b"checkout-session:o1"]


def test_a_proxy_in_the_environment_keeps_the_httpx_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    assert isinstance(stripe_http_client(5), StripeHttpClient)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert isinstance(stripe_http_client(5), stripe.HTTPXClient)


def self_signed_localhost(folder: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_is_verified_against_the_sdks_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_path, key_path = self_signed_localhost(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_path, key_path)
    async with serving(keep_answering, server_tls) as (url, accepted):
        # Not in the SDK's bundle: refused.
        async with stripe_client(5) as client:
            with pytest.raises(stripe.APIConnectionError) as raised:
                await client.request_async("get", f"{url}/v1/x", {})
        assert isinstance(raised.value.__cause__, UpstreamConnectError)
        # The bundle names it: answered, over one connection.
        monkeypatch.setattr(stripe, "ca_bundle_path", str(cert_path))
        async with stripe_client(5) as client:
            for _ in range(2):
                content, status, _ = await client.request_async("post", f"{url}/v1/x", {}, "a=1")
                assert status == 200
                assert content.endswith(b'"body":"a=1"}')
    assert len(accepted) == 1  # (the refused handshake never reached the handler)
