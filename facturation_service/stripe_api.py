"""Every request this service makes to Stripe, behind one small client object.

All calls are async (``*_async``, carried by ``stripe_http.StripeHttpClient``); the SDK retries
network errors, 409s and 5xx up to ``max_network_retries`` times, reusing the idempotency key we
pass, so a retry never creates a second object. Stripe's errors leave this module as problem+json
errors.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx
import msgspec
import stripe
from stripe._util import dashboard_link

from facturation_service.stripe_form import encode_form
from facturation_service.stripe_http import stripe_http_client
from facturation_service.stripe_logs import log_stripe_requests_only_when_enabled, sdk_log
from shared import (
    BadGatewayError,
    ConflictError,
    GatewayTimeoutError,
    PaymentRequiredError,
    ProblemError,
    ServiceUnavailableError,
    UnprocessableError,
    UpstreamTimeoutError,
)

if TYPE_CHECKING:
    from stripe.params import CustomerCreateParams, EventListParams, RefundCreateParams
    from stripe.params.checkout import SessionCreateParams

__all__ = ["OpenedSession", "StripeApi", "problem_from_stripe_error"]

T = TypeVar("T")


class OpenedSession(msgspec.Struct, frozen=True):
    """What checkout keeps of a Checkout Session Stripe has just made: its id and the secret the
    browser mounts embedded Checkout with. Read straight from Stripe's JSON: building the SDK's
    ``stripe.checkout.Session`` (about a hundred nested objects) was most of the SDK's
    cost on the checkout path (see docs/benchmarks.md)."""

    id: str
    client_secret: str | None = None


class StripeApi:
    """The service's Stripe client; one per process, closed on shutdown."""

    def __init__(
        self,
        secret_key: str,
        *,
        api_base: str = "",
        timeout_seconds: float = 10.0,
        max_network_retries: int = 2,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        """Args:
        http_client: what carries the requests (tests hand one over an in-process sandbox);
            by default ``stripe_http_client(timeout_seconds)``.
        """
        log_stripe_requests_only_when_enabled()
        self.http_client = http_client or stripe_http_client(timeout_seconds)
        self.max_network_retries = max_network_retries
        self.client = stripe.StripeClient(
            secret_key,
            http_client=self.http_client,
            max_network_retries=max_network_retries,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
        )
        self._sessions_url = (
            f"{api_base.rstrip('/') or stripe.DEFAULT_API_BASE}/v1/checkout/sessions"
        )
        self._post_headers = _post_headers(secret_key, self.http_client.name)

    async def close(self) -> None:
        await self.http_client.close_async()  # type: ignore[no-untyped-call]

    async def create_customer(
        self, *, user_id: str, email: str, name: str | None, idempotency_key: str
    ) -> stripe.Customer:
        params: CustomerCreateParams = {"email": email, "metadata": {"user_id": user_id}}
        if name:
            params["name"] = name
        return await _answer(
            self.client.v1.customers.create_async(params, {"idempotency_key": idempotency_key})
        )

    async def create_checkout_session(
        self, params: SessionCreateParams, *, idempotency_key: str
    ) -> OpenedSession:
        return await _answer(self._open_session(params, idempotency_key))

    async def _open_session(
        self, params: SessionCreateParams, idempotency_key: str
    ) -> OpenedSession:
        """``POST /v1/checkout/sessions``, the request on checkout's hot path, as the SDK's
        ``sessions.create_async`` sends it (its headers; its form, byte for byte; its HTTP
        client's retries, with the same idempotency key; its errors), without its requestor.
        The SDK's own logs of the request and its answer are written as it writes them.

        The requestor's generic work (quoting the form character by character, the headers
        rebuilt, the answer parsed into ordered dicts) cost about 230 µs of CPU a session here
        (docs/benchmarks.md): the form is :func:`encode_form`'s, the headers are built once and
        the answer is read straight into an :class:`OpenedSession`."""
        form = encode_form(params)
        sdk_log("log_info", "Request to Stripe api", method="post", url=self._sessions_url)
        sdk_log("log_debug", "Post details", post_data=form, api_version=stripe.api_version)
        content, status, headers = await self.http_client.request_with_retries_async(
            "post",
            self._sessions_url,
            {**self._post_headers, "Idempotency-Key": idempotency_key},
            form,
            max_network_retries=self.max_network_retries,
        )
        sdk_log("log_info", "Stripe API response", path=self._sessions_url, response_code=status)
        sdk_log("log_debug", "API response body", body=content)
        if "Request-Id" in headers:
            link = dashboard_link(headers["Request-Id"])  # type: ignore[no-untyped-call]
            sdk_log("log_debug", "Dashboard link for request", link=link)
        if not 200 <= status < 300:
            raise _error_from_answer(content, status, headers)
        try:
            return msgspec.json.decode(content, type=OpenedSession)
        except msgspec.DecodeError as exc:
            raise _unreadable(content, status) from exc

    async def create_subscription_checkout_session(
        self, params: SessionCreateParams, *, idempotency_key: str
    ) -> OpenedSession:
        """Like :meth:`create_checkout_session`; when Stripe refuses ``expires_at`` because its
        clock disagrees with ours (skew, or the sandbox's clock moved ahead), the session is
        made once more without it (Stripe's default, 24 h): facturation keeps its own deadline
        and expires an abandoned session itself. A refused request stores no idempotent result,
        so the same key is fine."""
        try:
            return await self._open_session(params, idempotency_key)
        except stripe.InvalidRequestError as exc:
            if exc.param != "expires_at" or "expires_at" not in params:
                raise problem_from_stripe_error(exc) from exc
        except stripe.StripeError as exc:
            raise problem_from_stripe_error(exc) from exc
        without = cast(
            "SessionCreateParams", {k: v for k, v in params.items() if k != "expires_at"}
        )
        return await self.create_checkout_session(without, idempotency_key=idempotency_key)

    async def retrieve_checkout_session(self, session_id: str) -> stripe.checkout.Session:
        return await _answer(self.client.v1.checkout.sessions.retrieve_async(session_id))

    async def expire_checkout_session(
        self, session_id: str, *, idempotency_key: str
    ) -> stripe.checkout.Session:
        """Close an open session (a 400, i.e. 422 here, when it is complete)."""
        return await _answer(
            self.client.v1.checkout.sessions.expire_async(
                session_id, options={"idempotency_key": idempotency_key}
            )
        )

    # --- subscriptions and the customer portal (issue 11) ---

    async def retrieve_subscription(self, subscription_id: str) -> stripe.Subscription:
        return await _answer(self.client.v1.subscriptions.retrieve_async(subscription_id))

    async def list_subscriptions(self, customer: str) -> stripe.ListObject[stripe.Subscription]:
        """The customer's subscriptions in every status (one page of up to 100)."""
        return await _answer(
            self.client.v1.subscriptions.list_async(
                {"customer": customer, "status": "all", "limit": 100}
            )
        )

    async def set_cancel_at_period_end(
        self, subscription_id: str, cancel_at_period_end: bool
    ) -> stripe.Subscription:
        """Schedule the end at the period's end (``True``) or undo that (``False``)."""
        return await _answer(
            self.client.v1.subscriptions.update_async(
                subscription_id, {"cancel_at_period_end": cancel_at_period_end}
            )
        )

    async def cancel_subscription(self, subscription_id: str) -> stripe.Subscription:
        """End it now (``DELETE /v1/subscriptions/{id}``)."""
        return await _answer(self.client.v1.subscriptions.cancel_async(subscription_id))

    async def create_portal_session(
        self, *, customer: str, return_url: str, idempotency_key: str
    ) -> stripe.billing_portal.Session:
        return await _answer(
            self.client.v1.billing_portal.sessions.create_async(
                {"customer": customer, "return_url": return_url},
                {"idempotency_key": idempotency_key},
            )
        )

    async def create_refund(
        self,
        *,
        payment_intent: str,
        amount: int,
        reason: str | None,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> stripe.Refund:
        params: RefundCreateParams = {
            "payment_intent": payment_intent,
            "amount": amount,
            "metadata": metadata,
        }
        if reason:
            params["reason"] = reason
        return await _answer(
            self.client.v1.refunds.create_async(params, {"idempotency_key": idempotency_key})
        )

    async def retrieve_invoice(self, invoice_id: str) -> stripe.Invoice:
        return await _answer(self.client.v1.invoices.retrieve_async(invoice_id))

    # --- catch-up (issue 12) ---

    async def list_events(
        self,
        *,
        types: list[str],
        created_gte: int,
        starting_after: str | None = None,
        limit: int = 100,
    ) -> stripe.ListObject[stripe.Event]:
        """One page of Stripe's events of these types (at most 20), newest first."""
        params: EventListParams = {
            "types": types,
            "created": {"gte": created_gte},
            "limit": limit,
        }
        if starting_after is not None:
            params["starting_after"] = starting_after
        return await _answer(self.client.v1.events.list_async(params))


def _post_headers(secret_key: str, http_library: str) -> dict[str, str]:
    """The headers the SDK's requestor sends with every v1 ``POST`` but the idempotency key.
    Its description of the client leaves out the SDK's private telemetry id; its HTTP client
    still adds the previous request's timing (``X-Stripe-Client-Telemetry``)."""
    client = {
        "bindings_version": stripe.VERSION,
        "lang": "python",
        "httplib": http_library,
        "lang_version": platform.python_version(),
    }
    if stripe.enable_telemetry:
        client["platform"] = platform.platform()
    return {
        "X-Stripe-Client-User-Agent": json.dumps(client),
        "User-Agent": f"Stripe/v1 PythonBindings/{stripe.VERSION}",
        "Authorization": f"Bearer {secret_key}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Stripe-Version": stripe.api_version,
    }


def _error_from_answer(
    content: bytes, status: int, headers: Mapping[str, str]
) -> stripe.StripeError:
    """The SDK's error for a v1 answer that is not a 2xx (``handle_error_response`` and
    ``specific_v1_api_error`` of stripe-python's requestor, for the answers a v1 ``POST`` gets)."""
    body = content.decode("utf-8", errors="replace")
    try:
        answer = json.loads(body)
    except ValueError:
        return _unreadable(content, status)
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        return stripe.APIError(
            f"Invalid response object from API: {body!r} (HTTP response code was {status})",
            http_body=body,
            http_status=status,
            json_body=answer,
        )
    message, param, code = error.get("message"), error.get("param"), error.get("code")
    details: dict[str, Any] = {
        "http_body": body,
        "http_status": status,
        "json_body": answer,
        "headers": dict(headers),
    }
    if status == 429 or (status == 400 and code == "rate_limit"):
        return stripe.RateLimitError(message, **details)
    if status in (400, 404):
        if error.get("type") == "idempotency_error":
            return stripe.IdempotencyError(message, **details)
        return stripe.InvalidRequestError(message, param, code, **details)  # type: ignore[no-untyped-call]
    if status == 401:
        return stripe.AuthenticationError(message, **details)
    if status == 402:
        return stripe.CardError(message, param, code, **details)  # type: ignore[no-untyped-call]
    if status == 403:
        return stripe.PermissionError(message, **details)
    return stripe.APIError(message, **details)


def _unreadable(content: bytes, status: int) -> stripe.APIError:
    body = content.decode("utf-8", errors="replace")
    return stripe.APIError(
        f"Invalid response body from API: {body} (HTTP response code was {status})",
        http_body=body,
        http_status=status,
    )


async def _answer(request: Awaitable[T]) -> T:
    """Await one request to Stripe; its failure leaves as the problem the client sees."""
    try:
        return await request
    except stripe.StripeError as exc:
        raise problem_from_stripe_error(exc) from exc


def problem_from_stripe_error(exc: stripe.StripeError) -> ProblemError:
    """Map a Stripe failure (already retried by the SDK) to the problem the client sees.

    The caller's mistakes (a declined card, a request Stripe refuses) are 4xx with Stripe's own
    message; Stripe being down, slow or refusing our credentials is 5xx.
    """
    extra: dict[str, Any] = {"stripe_request_id": exc.request_id}
    if exc.code:
        extra["stripe_code"] = exc.code
    message = exc.user_message or str(exc) or "Stripe refused the request."
    if isinstance(exc, stripe.CardError):
        return PaymentRequiredError(message, extra=extra)
    if isinstance(exc, stripe.IdempotencyError):
        return ConflictError(message, extra=extra)
    if isinstance(exc, stripe.InvalidRequestError):
        return UnprocessableError(message, extra=extra)
    if isinstance(exc, stripe.RateLimitError):
        return ServiceUnavailableError(
            "Stripe is rate limiting this service; retry later.",
            headers={"Retry-After": "1"},
            extra=extra,
        )
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, (httpx.TimeoutException, UpstreamTimeoutError)):
            return GatewayTimeoutError("Stripe did not answer in time.", extra=extra)
        return BadGatewayError("Stripe could not be reached.", extra=extra)
    # Authentication, permission and 5xx errors: nothing the caller can fix.
    return BadGatewayError("Stripe refused or failed the request.", extra=extra)
