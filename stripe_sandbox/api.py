"""What every /v1 call goes through: the request log, the latency, a scripted fault if one
matches (see faults.py), then in Stripe's order: API key, injected random failures, parameters,
idempotency replay, the action, ``expand``, and a JSON answer carrying ``Request-Id``."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from litestar import Request, Response
from litestar.response import Stream

from stripe_sandbox.errors import StripeApiError, api_error, idempotency_error, invalid_request
from stripe_sandbox.faults import Fault
from stripe_sandbox.forms import Params, decode_form
from stripe_sandbox.objects import API_VERSION, Obj, new_id
from stripe_sandbox.state import IdempotentResult, SandboxState

__all__ = [
    "Action",
    "ConnectionDropped",
    "authenticate",
    "error_response",
    "json_response",
    "run_api_call",
    "sandbox_state",
]

Action = Callable[[Params, str], tuple[int, Obj]]
"""Takes the decoded parameters and the request id; returns the status and the object."""


def json_response(status: int, body: Obj, request_id: str, **headers: str) -> Response[bytes]:
    return Response(
        content=json.dumps(body, indent=2).encode(),
        status_code=status,
        media_type="application/json",
        headers={"Request-Id": request_id, "Stripe-Version": API_VERSION, **headers},
    )


def error_response(error: StripeApiError, request_id: str) -> Response[bytes]:
    return json_response(error.status, error.body(), request_id)


def authenticate(authorization: str | None) -> None:
    """Bearer or basic auth with a test secret key (any ``sk_test_`` key is this account's)."""
    key = ""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credentials).decode().partition(":")[0]
            except ValueError:
                key = ""
    if not key:
        raise invalid_request(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            status=401,
        )
    if not key.startswith("sk_test_") or len(key) < 12:
        shown = key[:8] + "*" * 4 + key[-4:] if len(key) > 12 else "****"
        raise invalid_request(f"Invalid API Key provided: {shown}", status=401)


def _expand(obj: Obj, paths: list[str], state: SandboxState) -> Obj:
    if not paths:
        return obj
    expanded = json.loads(json.dumps(obj))
    for path in paths:
        _expand_path(expanded, path.split("."), state, path)
    result: Obj = expanded
    return result


def _expand_path(node: Any, parts: list[str], state: SandboxState, full: str) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, dict) and node.get("object") == "list" and head == "data":
        for item in node["data"]:
            if rest:
                _expand_path(item, rest, state, full)
        return
    if not isinstance(node, dict) or (head not in node and head != "line_items"):
        raise invalid_request(f"This property cannot be expanded ({full}).", param="expand")
    if head == "line_items" and node.get("object") == "checkout.session":
        items = state.checkout_line_items.get(node["id"], [])
        node[head] = {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/checkout/sessions/{node['id']}/line_items",
        }
    elif isinstance(node[head], str):
        target = state.lookup(node[head])
        if target is None:
            raise invalid_request(f"This property cannot be expanded ({full}).", param="expand")
        node[head] = json.loads(json.dumps(target))
    if rest:
        _expand_path(node[head], rest, state, full)


class ConnectionDropped(Exception):
    """Raised after the answer has started, so the server closes the connection mid-answer."""


async def _dropped_body() -> AsyncIterator[bytes]:
    raise ConnectionDropped("scripted sandbox fault: connection dropped")
    yield b""  # type: ignore[unreachable]  # makes this a generator


async def _fault_response(fault: Fault, request_id: str) -> Response[Any]:
    if fault.kind == "disconnect":
        return Stream(_dropped_body(), media_type="application/json")
    if fault.kind == "timeout":
        # The client gives up first; whoever still listens then gets a plain server error.
        await asyncio.sleep(fault.seconds)
    return error_response(fault.error(), request_id)


def sandbox_state(request: Request[Any, Any, Any]) -> SandboxState:
    """The sandbox's state, held by the app its factory built."""
    state: SandboxState = request.app.state.sandbox
    return state


async def run_api_call(request: Request[Any, Any, Any], action: Action) -> Response[Any]:
    """Logs the request, then answers it: a scripted fault if one matches, else ``action``."""
    state = sandbox_state(request)
    request_id = new_id("req_", 14)
    if request.method == "POST":
        raw = (await request.body()).decode("utf-8", errors="replace")
    else:
        raw = request.url.query or ""
    entry = state.requests.record(
        request.method, request.url.path, raw, request.headers, request_id
    )
    # Stripe's latency is the whole call as the client sees it: the answer leaves
    # ``latency_ms`` after the request arrived, however long working it out took here.
    answer_at = time.monotonic() + state.latency_ms / 1000
    with state.requests.holding():
        fault = state.faults.take(request.method, request.url.path)
        if fault is not None:
            entry.fault = fault.kind
            response = await _fault_response(fault, request_id)
        else:
            response = _answer(request, state, action, raw, request_id)
        if (wait := answer_at - time.monotonic()) > 0:
            await asyncio.sleep(wait)
    if not isinstance(response, Stream):
        entry.status = response.status_code
    return response


def _answer(
    request: Request[Any, Any, Any],
    state: SandboxState,
    action: Action,
    raw: str,
    request_id: str,
) -> Response[bytes]:
    try:
        authenticate(request.headers.get("authorization"))
        if state.failure_rate > 0 and random.random() < state.failure_rate:  # noqa: S311 - fault injection
            raise api_error()
        params = decode_form(raw)
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        endpoint = f"{request.method} {request.url.path}"
        fingerprint = json.dumps(params, sort_keys=True)
        if key is not None:
            replay = _replay(state, key, endpoint, fingerprint, request_id)
            if replay is not None:
                return replay
        expand = params.pop("expand", [])
        if not isinstance(expand, list) or not all(isinstance(path, str) for path in expand):
            raise invalid_request("Invalid array: expand", param="expand")
        status, obj = action(params, request_id)
        response = json_response(status, _expand(obj, expand, state), request_id)
    except StripeApiError as error:
        return error_response(error, request_id)
    if key is not None:
        state.idempotency[key] = IdempotentResult(
            endpoint=endpoint,
            fingerprint=fingerprint,
            status=status,
            body=response.content,
            request_id=request_id,
        )
        response.headers["Idempotency-Key"] = key
    return response


def _replay(
    state: SandboxState, key: str, endpoint: str, fingerprint: str, request_id: str
) -> Response[bytes] | None:
    saved = state.idempotency.get(key)
    if saved is None:
        return None
    if saved.endpoint != endpoint:
        raise idempotency_error(
            "Keys for idempotent requests can only be used for the same endpoint they were first "
            f"used for ('{saved.endpoint}' vs '{endpoint}'). Try using a key other than "
            f"'{key}' if you meant to execute a different request."
        )
    if saved.fingerprint != fingerprint:
        raise idempotency_error(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{key}' if you meant to execute a "
            "different request."
        )
    return Response(
        content=saved.body,
        status_code=saved.status,
        media_type="application/json",
        headers={
            "Request-Id": request_id,
            "Stripe-Version": API_VERSION,
            "Idempotency-Key": key,
            "Idempotent-Replayed": "true",
            "Original-Request": saved.request_id,
        },
    )
