"""Facturation's relay route answers each delivery the gateway relayed exactly as it answers the
same delivery sent alone: its own status, headers, request id, journal row, log line and count."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from facturation_service.webhooks import RELAY_BODY_LIMIT
from shared import (
    INTERNAL_TOKEN_HEADER,
    MAX_RELAYED_DELIVERIES,
    PROBLEM_MEDIA_TYPE,
    RELAY_MEDIA_TYPE,
    RELAY_PATH,
    REQUEST_ID_HEADER,
    Database,
    RelayedAnswer,
    RelayedDelivery,
    decode_answers,
    encode_relay,
)
from tests.support import stripe_events
from tests.support.access_log import access_lines
from tests.support.webhook_app import INTERNAL_TOKEN, count_events, counted_deliveries

NOT_OUR_SECRET = "whsec_not_ours_0123456789"


def _delivery(
    body: bytes, *, request_id: str, secret: str = stripe_events.WEBHOOK_SECRET, **extra: str
) -> RelayedDelivery:
    """A delivery as the gateway forwards it: its credential, Stripe's headers, its length."""
    headers = {
        INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN,
        "Stripe-Signature": stripe_events.sign(body, secret),
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        REQUEST_ID_HEADER: request_id,
        **extra,
    }
    return RelayedDelivery([(k.lower().encode(), v.encode()) for k, v in headers.items()], body)


def _event_body() -> bytes:
    return stripe_events.encode(stripe_events.event("invoice.paid", stripe_events.invoice("paid")))


async def _relay(client: AsyncTestClient[Litestar], deliveries: list[RelayedDelivery]) -> Any:
    return await client.post(
        RELAY_PATH, content=encode_relay(deliveries), headers={"Content-Type": RELAY_MEDIA_TYPE}
    )


def _header(answer: RelayedAnswer, name: bytes) -> str:
    return next(value.decode() for key, value in answer.headers if key == name)


def _json(answer: RelayedAnswer) -> Any:
    return msgspec.json.decode(answer.body)


async def test_each_relayed_delivery_gets_the_answer_it_would_get_alone(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    first, second = _event_body(), _event_body()
    before = (await webhook_client.get("/metrics")).text
    response = await _relay(
        webhook_client,
        [
            _delivery(first, request_id="rid-first"),
            _delivery(second, request_id="rid-not-ours", secret=NOT_OUR_SECRET),
            _delivery(second, request_id="rid-second"),
            # A form body: the lane leaves it to Litestar's route, which answers it too.
            _delivery(
                first,
                request_id="rid-again",
                **{"Content-Type": "application/x-www-form-urlencoded"},
            ),
        ],
    )
    after = (await webhook_client.get("/metrics")).text
    alone = await webhook_client.post(
        "/webhooks/stripe",
        content=second,
        headers={"Stripe-Signature": stripe_events.sign(second, NOT_OUR_SECRET)},
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == RELAY_MEDIA_TYPE
    answers = decode_answers(response.content)
    assert [answer.status for answer in answers] == [200, 400, 200, 200]
    assert [_header(answer, b"x-request-id") for answer in answers] == [
        "rid-first",
        "rid-not-ours",
        "rid-second",
        "rid-again",
    ]
    # The same event twice in one relay request: both acknowledged, stored by whichever of the
    # two the journal wrote first.
    assert sorted([_json(answers[0]), _json(answers[3])], key=lambda ack: ack["duplicate"]) == [
        {"id": msgspec.json.decode(first)["id"], "duplicate": duplicate, "handled": True}
        for duplicate in (False, True)
    ]
    assert _json(answers[2])["duplicate"] is False
    assert _header(answers[1], b"content-type") == PROBLEM_MEDIA_TYPE
    assert _json(answers[1]) == {**alone.json(), "request_id": "rid-not-ours"}
    assert await count_events(db) == 2
    assert await count_events(db, msgspec.json.decode(second)["id"]) == 1
    # Each delivery is counted as one POST /webhooks/stripe, as if it had come alone.
    assert counted_deliveries(after, 200) - counted_deliveries(before, 200) == 3
    assert counted_deliveries(after, 400) - counted_deliveries(before, 400) == 1


async def test_relayed_deliveries_the_journal_cannot_store_each_get_the_503_they_would_alone(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(text("DROP TABLE webhook_events"))
    bodies = [_event_body(), _event_body()]
    before = (await webhook_client.get("/metrics")).text

    response = await _relay(
        webhook_client,
        [_delivery(body, request_id=f"rid-{n}") for n, body in enumerate(bodies)],
    )
    after = (await webhook_client.get("/metrics")).text
    alone = await webhook_client.post(
        "/webhooks/stripe",
        content=bodies[0],
        headers={"Stripe-Signature": stripe_events.sign(bodies[0]), REQUEST_ID_HEADER: "rid-alone"},
    )

    assert alone.status_code == 503
    answers = decode_answers(response.content)
    assert [answer.status for answer in answers] == [503, 503]
    for n, answer in enumerate(answers):
        assert sorted(name.decode() for name, _ in answer.headers) == sorted(alone.headers)
        assert _header(answer, b"x-request-id") == f"rid-{n}"
        assert _header(answer, b"retry-after") == alone.headers["retry-after"]
        assert _header(answer, b"content-type") == PROBLEM_MEDIA_TYPE
        assert _json(answer) == {**alone.json(), "request_id": f"rid-{n}"}
    assert counted_deliveries(after, 503) - counted_deliveries(before, 503) == 2


async def test_each_relayed_delivery_writes_its_own_access_log_line(
    webhook_client: AsyncTestClient[Litestar],
) -> None:
    with access_lines() as handler:
        await _relay(
            webhook_client,
            [_delivery(_event_body(), request_id=f"rid-{n}") for n in range(3)],
        )

    assert sorted(handler.lines[:3]) == [("/webhooks/stripe", 200, f"rid-{n}") for n in range(3)]
    assert handler.lines[3][:2] == (RELAY_PATH, 200)
    assert handler.lines[3][2] not in {f"rid-{n}" for n in range(3)}


async def test_a_relayed_delivery_without_the_credential_is_refused_alone(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    body = _event_body()
    forged = _delivery(body, request_id="rid-forged")
    forged = RelayedDelivery(
        [(k, b"not-the-credential" if k == b"x-internal-token" else v) for k, v in forged.headers],
        body,
    )

    response = await _relay(webhook_client, [forged, _delivery(_event_body(), request_id="rid")])

    assert [answer.status for answer in decode_answers(response.content)] == [401, 200]
    assert await count_events(db) == 1


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [
        ({INTERNAL_TOKEN_HEADER: "not-the-credential"}, encode_relay([]), 401),
        ({"Content-Type": "application/x-www-form-urlencoded"}, encode_relay([]), 400),
        ({}, b"\x93not a relay", 400),
        (
            {},
            encode_relay(
                [_delivery(_event_body(), request_id="rid")] * (MAX_RELAYED_DELIVERIES + 1)
            ),
            400,
        ),
    ],
)
async def test_a_relay_request_it_cannot_trust_or_read_changes_nothing(
    webhook_client: AsyncTestClient[Litestar],
    db: Database,
    headers: dict[str, str],
    content: bytes,
    status: int,
) -> None:
    response = await webhook_client.post(
        RELAY_PATH, content=content, headers={"Content-Type": RELAY_MEDIA_TYPE, **headers}
    )

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert await count_events(db) == 0


async def test_a_relay_request_the_lane_does_not_take_is_refused_saying_why(
    webhook_client: AsyncTestClient[Litestar], db: Database
) -> None:
    """Chunked or over the limit, a relay request reaches the route's handler, which refuses
    it with a problem (not a 404) and stores nothing."""
    relayed = encode_relay([_delivery(_event_body(), request_id="rid")])

    chunked = await webhook_client.post(
        RELAY_PATH,
        content=relayed,
        headers={"Content-Type": RELAY_MEDIA_TYPE, "Transfer-Encoding": "chunked"},
    )
    too_large = await webhook_client.post(
        RELAY_PATH,
        content=relayed + b"\0" * RELAY_BODY_LIMIT,
        headers={"Content-Type": RELAY_MEDIA_TYPE},
    )

    assert chunked.status_code == 400
    assert "Content-Length" in chunked.json()["detail"]
    assert too_large.status_code == 413
    for response in (chunked, too_large):
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert await count_events(db) == 0
