"""The Checkout Session request sent without the SDK's requestor is the SDK's own: the same form,
byte for byte, the same headers, and the same errors for the same answers."""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import pytest
import stripe
from stripe._encode import _api_encode

from facturation_service.catalog import load_catalog
from facturation_service.checkout import (
    PricedBasket,
    checkout_params,
    subscription_checkout_params,
)
from facturation_service.schemas import PricedLine
from facturation_service.stripe_api import OpenedSession, StripeApi
from facturation_service.stripe_form import encode_form

RETURN_URL = "https://shop.example/done?session_id={CHECKOUT_SESSION_ID}&from=a b"
HOSTILE = "Ünïcode & co = 50%+[x] #1/2?\n\t\"'<é>"


def sdk_form(params: Mapping[str, Any]) -> str:
    """How stripe-python's requestor encodes a v1 request's parameters."""
    return urlencode(list(_api_encode(params))).replace("%5B", "[").replace("%5D", "]")


def line(product_id: str, name: str, quantity: int, unit_amount: int) -> PricedLine:
    return PricedLine(
        product_id=product_id,
        name=name,
        quantity=quantity,
        unit_amount=unit_amount,
        amount=quantity * unit_amount,
        currency="eur",
    )


def payment_params() -> Any:
    basket = PricedBasket(
        lines=[line("pro-month", "Pro", 1, 1900), line("team seat&1", HOSTILE, 12, 900)],
        amount_total=12700,
        currency="eur",
    )
    return checkout_params(
        basket,
        user_id="usr_ä 1",
        user_stripe_id="cus_123",
        order_id="ord_[1]",
        return_url=RETURN_URL,
    )


def subscription_params() -> Any:
    plan = next(p for p in load_catalog().products if p.recurring is not None)
    return subscription_checkout_params(
        plan,
        user_id="usr_1",
        user_stripe_id="cus_1",
        order_id="ord_1",
        return_url=RETURN_URL,
        expires_at=1_900_000_000,
    )


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(payment_params(), id="payment session"),
        pytest.param(subscription_params(), id="subscription session"),
        pytest.param(
            {
                "a": True,
                "b": False,
                "skipped": None,
                "nested": {"deep": {"x": 0, "gone": None, "y": -5}, "flag": True},
                "list": ["one", 2, {"k": "v w"}, {"empty": None}],
                HOSTILE: HOSTILE,
                "empty": "",
            },
            id="every kind of value",
        ),
    ],
)
def test_the_form_is_the_sdks_byte_for_byte(params: Mapping[str, Any]) -> None:
    assert encode_form(params) == sdk_form(params)
    assert encode_form(params) == sdk_form(params)  # a second time, from its quoted keys


@pytest.mark.parametrize(
    "value",
    [datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC), 1.5, [None], [True], object()],
)
def test_a_value_the_sdk_encodes_its_own_way_is_refused(value: object) -> None:
    with pytest.raises(TypeError):
        encode_form({"key": value})


class CaseInsensitive(dict[str, str]):
    """Answer headers as HTTP clients hand them to the SDK: looked up whatever the case."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__({name.lower(): value for name, value in headers.items()})

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


class Recorded:
    def __init__(self, headers: Mapping[str, str], body: str) -> None:
        self.headers = dict(headers)
        self.body = body


class CannedStripe(stripe.HTTPClient):
    """Answers every request with one canned answer, and keeps what was sent."""

    name = "canned"

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        super().__init__()
        self.answer = (body, status, headers)
        self.sent: list[Recorded] = []

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        assert (method, url) == ("post", "http://stripe.test/v1/checkout/sessions")
        self.sent.append(Recorded(headers, post_data))
        return self.answer

    async def close_async(self) -> None:
        return None


def both_ways(status: int, body: bytes) -> tuple[CannedStripe, StripeApi, CannedStripe]:
    """The SDK's ``sessions.create_async`` and ``StripeApi``, each against the same answer."""
    headers = CaseInsensitive({"Request-Id": "req_canned"})
    sdk_http = CannedStripe(status, body, headers)
    ours_http = CannedStripe(status, body, headers)
    ours = StripeApi(
        "sk_test_canned_key",
        api_base="http://stripe.test",
        http_client=ours_http,
        max_network_retries=0,
    )
    return sdk_http, ours, ours_http


def sdk_client(http: CannedStripe) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_canned_key",
        http_client=http,
        max_network_retries=0,
        base_addresses={"api": "http://stripe.test"},
    )


async def test_the_request_carries_the_sdks_headers_and_form_and_the_answer_is_read() -> None:
    answer = {"id": "cs_test_1", "object": "checkout.session", "client_secret": "cs_secret"}
    sdk_http, ours, ours_http = both_ways(200, json.dumps(answer, indent=2).encode())
    params = payment_params()

    await sdk_client(sdk_http).v1.checkout.sessions.create_async(
        params, {"idempotency_key": "checkout-session:ord_1"}
    )
    opened = await ours.create_checkout_session(params, idempotency_key="checkout-session:ord_1")

    assert opened == OpenedSession(id="cs_test_1", client_secret="cs_secret")
    [sdk_sent], [ours_sent] = sdk_http.sent, ours_http.sent
    assert ours_sent.body == sdk_sent.body
    sdk_client_description = json.loads(sdk_sent.headers.pop("X-Stripe-Client-User-Agent"))
    ours_client_description = json.loads(ours_sent.headers.pop("X-Stripe-Client-User-Agent"))
    sdk_client_description.pop("telemetry_id", None)
    assert ours_client_description == sdk_client_description
    assert ours_sent.headers == sdk_sent.headers


def error(status: int, **fields: Any) -> bytes:
    return json.dumps({"error": fields}).encode()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, error(400, type="invalid_request_error", message="No such price", param="x")),
        (404, error(404, type="invalid_request_error", message="Not found", code="missing")),
        (400, error(400, type="idempotency_error", message="Keys differ")),
        (400, error(400, type="invalid_request_error", message="Slow", code="rate_limit")),
        (429, error(429, type="rate_limit_error", message="Too many")),
        (401, error(401, type="invalid_request_error", message="Invalid API Key")),
        (402, error(402, type="card_error", message="Declined", code="card_declined", param="c")),
        (403, error(403, type="invalid_request_error", message="Not allowed")),
        (500, error(500, type="api_error", message="Boom")),
        (502, b"<html>bad gateway</html>"),
        (500, b'["no error object"]'),
    ],
)
async def test_an_error_answer_raises_the_error_the_sdk_raises(status: int, body: bytes) -> None:
    sdk_http, ours, _ = both_ways(status, body)
    params = payment_params()

    with pytest.raises(stripe.StripeError) as sdk_raised:
        await sdk_client(sdk_http).v1.checkout.sessions.create_async(
            params, {"idempotency_key": "k"}
        )
    with pytest.raises(stripe.StripeError) as ours_raised:
        await ours._open_session(params, "k")

    sdk_error, ours_error = sdk_raised.value, ours_raised.value
    assert type(ours_error) is type(sdk_error)
    assert str(ours_error) == str(sdk_error)
    assert ours_error.http_status == sdk_error.http_status == status
    assert ours_error.code == sdk_error.code
    assert getattr(ours_error, "param", None) == getattr(sdk_error, "param", None)
    if body.startswith(b'{"error"'):
        assert ours_error.json_body == sdk_error.json_body
        assert ours_error.request_id == sdk_error.request_id == "req_canned"


async def test_a_2xx_answer_that_is_not_a_session_is_an_api_error() -> None:
    _, ours, _ = both_ways(200, b"not json")

    with pytest.raises(stripe.APIError, match="Invalid response body from API: not json"):
        await ours._open_session(payment_params(), "k")


async def test_an_error_that_is_not_an_object_is_an_api_error() -> None:
    _, ours, _ = both_ways(500, b'{"error": "a string"}')

    with pytest.raises(stripe.APIError, match="Invalid response object from API"):
        await ours._open_session(payment_params(), "k")


async def test_the_request_writes_the_sdks_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    answer = json.dumps({"id": "cs_test_1", "client_secret": "secret"}).encode()
    sdk_http, ours, _ = both_ways(200, answer)
    params = payment_params()
    caplog.set_level(logging.DEBUG, logger="stripe")

    await sdk_client(sdk_http).v1.checkout.sessions.create_async(params, {"idempotency_key": "k"})
    sdk_lines = [record.getMessage() for record in caplog.records]
    caplog.clear()
    await ours.create_checkout_session(params, idempotency_key="k")
    ours_lines = [record.getMessage() for record in caplog.records]

    assert len(ours_lines) == len(sdk_lines) >= 5
    assert ours_lines == sdk_lines
