"""The webhook relay forwards a delivery alone while facturation keeps up, and carries those that
arrive while its requests are all under way together in one, each answered as facturation
answered it; a relay request that fails fails each of its deliveries as a lone forward would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from gateway.proxy import Upstream
from gateway.webhook_relay import WebhookRelay
from shared import (
    MAX_RELAYED_DELIVERIES,
    RELAY_PATH,
    BadGatewayError,
    RelayedAnswer,
    decode_deliveries,
    encode_relay,
)
from tests.support.polling import eventually
from tests.support.stream_server import listening

TOKEN = b"relay-test-credential"


@dataclass
class Facturation:
    """Answers a lone delivery with its body reversed (held until ``release`` is set) and a relay
    request with each delivery's answer; records what reached it."""

    port: int = 0
    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    relay_answer: bytes | None = None
    """Set to answer relay requests with these raw bytes instead."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers["content-length"]))
                self.seen.append((target, headers, body))
                if target == RELAY_PATH:
                    writer.write(self._relayed(body))
                else:
                    await self.release.wait()
                    writer.write(_http(201, body[::-1]))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _relayed(self, body: bytes) -> bytes:
        if self.relay_answer is not None:
            return self.relay_answer
        answers = [
            RelayedAnswer(
                400 if delivery.body == b"bad" else 201,
                [(b"content-type", b"text/plain"), *delivery.headers[:1]],
                delivery.body[::-1],
            )
            for delivery in decode_deliveries(body)
        ]
        return _http(200, encode_relay(answers))


def _http(status: int, body: bytes) -> bytes:
    return b"HTTP/1.1 %d X\r\ncontent-length: %d\r\n\r\n" % (status, len(body)) + body


@pytest_asyncio.fixture
async def facturation() -> AsyncIterator[Facturation]:
    fake = Facturation()
    async with listening(fake.handle) as fake.port:
        try:
            yield fake
        finally:
            fake.release.set()


@pytest_asyncio.fixture
async def relay(facturation: Facturation) -> AsyncIterator[WebhookRelay]:
    upstream = Upstream(
        "facturation",
        f"http://127.0.0.1:{facturation.port}",
        connect_timeout=2,
        timeout=5,
        max_connections=8,
    )
    upstream.open()
    relay = WebhookRelay(upstream, TOKEN, max_in_flight=1)
    try:
        yield relay
    finally:
        await relay.close()
        upstream.close()


def _headers(name: str, body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"x-request-id", name.encode()), (b"content-length", str(len(body)).encode())]


def _deliver(relay: WebhookRelay, name: str, body: bytes) -> asyncio.Task[RelayedAnswer]:
    return asyncio.create_task(relay.deliver("/webhooks/stripe", _headers(name, body), body))


async def _forwarding(facturation: Facturation) -> None:
    """Until the first delivery has reached facturation (which holds its answer)."""

    async def reached() -> bool:
        return bool(facturation.seen)

    await eventually(reached, seconds=5)


async def _waiting_behind_a_forward(
    facturation: Facturation, relay: WebhookRelay, deliveries: list[tuple[str, bytes]]
) -> tuple[asyncio.Task[RelayedAnswer], list[asyncio.Task[RelayedAnswer]]]:
    """A first delivery forwarded alone (facturation holds its answer), and ``deliveries`` sent
    meanwhile, which wait for it."""
    first = _deliver(relay, "first", b"first")
    await _forwarding(facturation)
    waiting = [_deliver(relay, name, body) for name, body in deliveries]
    await asyncio.sleep(0.02)
    return first, waiting


async def _answer_the_forward(facturation: Facturation, first: asyncio.Task[RelayedAnswer]) -> None:
    facturation.release.set()
    await first


async def test_deliveries_that_wait_for_a_forward_travel_together_each_answered_as_its_own(
    facturation: Facturation, relay: WebhookRelay
) -> None:
    first = _deliver(relay, "first", b"\x00first body\xff")
    await _forwarding(facturation)
    waiting = [_deliver(relay, f"w{n}", f"body {n}\r\n".encode()) for n in range(3)]
    bad = _deliver(relay, "bad", b"bad")
    await asyncio.sleep(0.05)
    assert len(facturation.seen) == 1  # the others wait for the forward under way

    facturation.release.set()
    alone = await first
    answers = await asyncio.gather(*waiting, bad)

    assert (alone.status, alone.body) == (201, b"\xffydob tsrif\x00")
    assert [(a.status, a.body) for a in answers] == [
        *((201, f"body {n}\r\n".encode()[::-1]) for n in range(3)),
        (400, b"dab"),
    ]
    assert [dict(a.headers)[b"x-request-id"] for a in answers] == [b"w0", b"w1", b"w2", b"bad"]
    targets = [target for target, _, _ in facturation.seen]
    assert targets == ["/webhooks/stripe", RELAY_PATH]
    _, relay_headers, relay_body = facturation.seen[1]
    assert relay_headers["x-internal-token"] == TOKEN.decode()
    relayed = decode_deliveries(relay_body)
    assert [d.body for d in relayed] == [*(f"body {n}\r\n".encode() for n in range(3)), b"bad"]
    assert relayed[0].headers == _headers("w0", b"body 0\r\n")


async def test_a_relay_request_carries_at_most_its_share_and_the_rest_follow(
    facturation: Facturation, relay: WebhookRelay
) -> None:
    count = MAX_RELAYED_DELIVERIES + 5
    first, waiting = await _waiting_behind_a_forward(
        facturation, relay, [(f"w{n}", b"%d" % n) for n in range(count)]
    )
    await _answer_the_forward(facturation, first)
    answers = await asyncio.gather(*waiting)

    assert [a.body for a in answers] == [(b"%d" % n)[::-1] for n in range(count)]
    sizes = [len(decode_deliveries(body)) for target, _, body in facturation.seen[1:]]
    assert sizes == [MAX_RELAYED_DELIVERIES, 5]


@pytest.mark.parametrize(
    "answer", [_http(500, b"oops"), _http(200, b"not messagepack"), _http(200, encode_relay([]))]
)
async def test_a_failed_relay_request_fails_each_delivery_and_the_relay_goes_on(
    facturation: Facturation, relay: WebhookRelay, answer: bytes
) -> None:
    facturation.relay_answer = answer
    first, waiting = await _waiting_behind_a_forward(
        facturation, relay, [(f"w{n}", b"x") for n in range(3)]
    )
    await _answer_the_forward(facturation, first)

    outcomes = await asyncio.gather(*waiting, return_exceptions=True)

    assert all(isinstance(outcome, BadGatewayError) for outcome in outcomes)
    later = await relay.deliver("/webhooks/stripe", _headers("later", b"later"), b"later")
    assert (later.status, later.body) == (201, b"retal")


async def test_a_delivery_whose_client_left_while_it_waited_is_not_relayed(
    facturation: Facturation, relay: WebhookRelay
) -> None:
    first, (gone, *kept) = await _waiting_behind_a_forward(
        facturation, relay, [("gone", b"gone"), *((f"kept{n}", b"kept%d" % n) for n in range(2))]
    )
    gone.cancel()
    await _answer_the_forward(facturation, first)

    assert [answer.body for answer in await asyncio.gather(*kept)] == [b"0tpek", b"1tpek"]
    assert [d.body for d in decode_deliveries(facturation.seen[1][2])] == [b"kept0", b"kept1"]


async def test_deliveries_read_in_one_turn_leave_together_and_a_lone_one_alone(
    facturation: Facturation, relay: WebhookRelay
) -> None:
    """Nothing under way: what arrives in one turn of the loop leaves at its end, together."""
    facturation.release.set()
    together = await asyncio.gather(*(_deliver(relay, f"t{n}", b"t%d" % n) for n in range(3)))
    alone = await _deliver(relay, "alone", b"alone")

    assert [answer.body for answer in together] == [b"0t", b"1t", b"2t"]
    assert alone.body == b"enola"
    assert [target for target, _, _ in facturation.seen] == [RELAY_PATH, "/webhooks/stripe"]


async def test_an_unexpected_failure_of_a_relay_request_reaches_each_delivery(
    facturation: Facturation, relay: WebhookRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No delivery is left waiting for an answer that will never come."""

    async def broken(deliveries: list[object]) -> list[RelayedAnswer]:
        raise RuntimeError("broken")

    monkeypatch.setattr(relay, "_exchange", broken)
    first, waiting = await _waiting_behind_a_forward(
        facturation, relay, [(f"w{n}", b"x") for n in range(2)]
    )
    await _answer_the_forward(facturation, first)

    async with asyncio.timeout(5):
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)

    assert [str(outcome) for outcome in outcomes] == ["broken", "broken"]
