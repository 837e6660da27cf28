"""A tiny Stripe stand-in: customers and Checkout Sessions in Stripe's JSON shape.

One core (:class:`FakeStripe`) serves both ways the tests reach it: as a respx side effect in unit
tests, and as a real HTTP server process (``python -m tests.support.fake_stripe serve --port N
[--latency 0.3]``) for end-to-end tests and benchmarks. Like Stripe, it replays the stored
response for a repeated ``Idempotency-Key`` and answers every request with a ``Request-Id``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

__all__ = ["FakeStripe", "RecordedRequest", "decode_form"]

_KEY = re.compile(r"[^\[\]]+")


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) back to nested dicts; lists stay index-keyed."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = _KEY.findall(key)
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, Any]
    raw_body: str


@dataclass
class FakeStripe:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    scripted: dict[tuple[str, str], list[httpx.Response | Exception]] = field(default_factory=dict)
    """Outcomes served before the normal answer (respx mode): a 500, a connection error..."""
    latency: float = 0.0
    """Seconds before each answer, so that concurrent calls really overlap."""
    in_flight: int = 0
    max_in_flight: int = 0
    """The most requests the server held at once: proof that callers did not serialise."""
    _replays: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: str
    ) -> tuple[int, dict[str, Any]]:
        headers = {name.lower(): value for name, value in headers.items()}
        form = decode_form(body)
        self.requests.append(RecordedRequest(method, path, headers, form, body))
        if not headers.get("authorization", "").startswith("Bearer sk_"):
            return 401, _error("invalid_request_error", "Invalid API Key provided.")
        key = headers.get("idempotency-key")
        if method == "POST" and key and key in self._replays:
            return self._replays[key]
        answer = self._route(method, path, form)
        if method == "POST" and key and answer[0] < 500:
            self._replays[key] = answer
        return answer

    def _route(self, method: str, path: str, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "POST" and path == "/v1/customers":
            return 200, self._create_customer(form)
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._create_session(form)
        if method == "GET" and path == "/v1/customers":
            customers = list(reversed(self.customers.values()))
            return 200, {"object": "list", "data": customers, "has_more": False, "url": path}
        match = re.fullmatch(r"/v1/checkout/sessions/([^/]+)", path)
        if method == "GET" and match:
            found = self.sessions.get(match.group(1))
            if found is None:
                return 404, _error(
                    "invalid_request_error",
                    f"No such checkout.session: '{match.group(1)}'",
                    code="resource_missing",
                    param="id",
                )
            return 200, found
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _create_customer(self, form: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": f"cus_{secrets.token_hex(7)}",
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": int(time.time()),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": None,
            "email": form.get("email"),
            "invoice_prefix": secrets.token_hex(4).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": form.get("metadata", {}),
            "name": form.get("name"),
            "phone": None,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        self.customers[customer["id"]] = customer
        return customer

    def _create_session(self, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        customer = form.get("customer")
        if customer not in self.customers:
            return 400, _error(
                "invalid_request_error",
                f"No such customer: '{customer}'",
                code="resource_missing",
                param="customer",
            )
        lines = form.get("line_items", {})
        amount = sum(
            int(line["quantity"]) * int(line["price_data"]["unit_amount"])
            for line in lines.values()
        )
        currencies = {line["price_data"]["currency"] for line in lines.values()}
        session_id = f"cs_test_{secrets.token_hex(16)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "client_reference_id": form.get("client_reference_id"),
            "client_secret": f"{session_id}_secret_{secrets.token_hex(12)}",
            "created": int(time.time()),
            "currency": next(iter(currencies), None),
            "customer": customer,
            "expires_at": int(time.time()) + 86400,
            "invoice": None,
            "invoice_creation": {
                "enabled": form.get("invoice_creation", {}).get("enabled") == "true",
                "invoice_data": {
                    "metadata": form.get("invoice_creation", {})
                    .get("invoice_data", {})
                    .get("metadata", {})
                },
            },
            "livemode": False,
            "metadata": form.get("metadata", {}),
            "mode": form.get("mode"),
            "payment_status": "unpaid",
            "return_url": form.get("return_url"),
            "status": "open",
            "ui_mode": form.get("ui_mode"),
            "url": None,
        }
        self.sessions[session_id] = session
        return 200, session

    def complete(self, session_id: str, invoice_id: str) -> None:
        """What paying does to a session, as far as the return page sees it."""
        self.sessions[session_id].update(
            status="complete", payment_status="paid", invoice=invoice_id
        )

    def posts(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == path]

    # --- as a respx side effect ---

    def script(self, method: str, path: str, *outcomes: httpx.Response | Exception) -> None:
        self.scripted.setdefault((method, path), []).extend(outcomes)

    async def respx_handler(self, request: httpx.Request) -> httpx.Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        queue = self.scripted.get((request.method, request.url.path))
        if queue:
            body_text = request.content.decode()
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.url.path,
                    {k.lower(): v for k, v in request.headers.items()},
                    decode_form(body_text),
                    body_text,
                )
            )
            outcome = queue.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        status, body = self.handle(
            request.method, request.url.path, dict(request.headers), request.content.decode()
        )
        return httpx.Response(
            status, json=body, headers={"Request-Id": f"req_{secrets.token_hex(7)}"}
        )

    # --- as an HTTP server ---

    def asgi(self) -> Callable[..., Awaitable[None]]:
        async def app(
            scope: MutableMapping[str, Any],
            receive: Callable[[], Awaitable[dict[str, Any]]],
            send: Callable[[dict[str, Any]], Awaitable[None]],
        ) -> None:
            if scope["type"] != "http":
                return
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            path: str = scope["path"]
            payload: dict[str, Any]
            if path == "/healthz":
                status, payload = 200, {"status": "ok"}
            elif path == "/_control/latency":
                # Benchmarks change the answer delay between rounds without a restart.
                self.latency = float(b"".join(chunks) or 0)
                self.max_in_flight = 0
                status, payload = 200, {"latency": self.latency}
            elif path == "/_control/stats":
                status, payload = 200, {"max_in_flight": self.max_in_flight}
            else:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    if self.latency:
                        await asyncio.sleep(self.latency)
                    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
                    status, payload = self.handle(
                        scope["method"], path, headers, b"".join(chunks).decode()
                    )
                finally:
                    self.in_flight -= 1
            body = json.dumps(payload).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"request-id", f"req_{secrets.token_hex(7)}".encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        return app


def _error(
    type_: str, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_stripe")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    uvicorn.run(
        FakeStripe(latency=args.latency).asgi(),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        backlog=2048,
    )


if __name__ == "__main__":
    main()
