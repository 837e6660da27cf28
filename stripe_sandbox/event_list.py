"""``GET /v1/events`` as Stripe answers it: newest first, filtered by ``type``/``types[]``,
``created`` (an integer or ``gt``/``gte``/``lt``/``lte``) and ``delivery_success``, paged with
``starting_after`` or ``ending_before`` and ``limit`` (1 to 100, default 10)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from stripe.params import EventListParams

from stripe_sandbox.errors import invalid_request, resource_missing
from stripe_sandbox.forms import Params, read_bool, read_int, read_str, reject_unknown
from stripe_sandbox.objects import Obj
from stripe_sandbox.state import SandboxState

__all__ = ["MAX_TYPES", "list_events"]

MAX_TYPES = 20
_BOUNDS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda created, bound: created > bound,
    "gte": lambda created, bound: created >= bound,
    "lt": lambda created, bound: created < bound,
    "lte": lambda created, bound: created <= bound,
}


def _types(params: Params) -> list[str] | None:
    single = read_str(params, "type")
    many = params.get("types")
    if many is None or many == "":
        return [single] if single is not None else None
    if single is not None:
        raise invalid_request(
            "You may only specify one of these parameters: type, types.", param="types"
        )
    if not isinstance(many, list) or not all(isinstance(item, str) and item for item in many):
        raise invalid_request("Invalid array: types", param="types")
    if len(many) > MAX_TYPES:
        raise invalid_request(f"types may contain at most {MAX_TYPES} elements.", param="types")
    return many


def _created_filter(params: Params) -> Callable[[int], bool]:
    raw = params.get("created")
    if raw is None or raw == "":
        return lambda _: True
    if isinstance(raw, str):
        exact = read_int(params, "created")
        return lambda created: created == exact
    if not isinstance(raw, dict):
        raise invalid_request("Invalid created: must be an integer or a range", param="created")
    checks: list[tuple[Callable[[int, int], bool], int]] = []
    for name in raw:
        if name not in _BOUNDS:
            raise invalid_request(
                f"Received unknown parameter: created[{name}]",
                param=f"created[{name}]",
                code="parameter_unknown",
            )
        bound = read_int(raw, name, param=f"created[{name}]")
        if bound is not None:
            checks.append((_BOUNDS[name], bound))
    return lambda created: all(check(created, bound) for check, bound in checks)


def _matches_type(event_type: str, patterns: list[str] | None) -> bool:
    # Stripe accepts a wildcard such as ``invoice.*``.
    return patterns is None or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


def _delivered(state: SandboxState, event: Obj) -> bool:
    delivery = state.deliveries.get(event["id"])
    return delivery is not None and delivery.status == "delivered"


def list_events(state: SandboxState, params: Params) -> tuple[list[Obj], bool]:
    """A page of events and ``has_more``."""
    reject_unknown(params, EventListParams)
    types = _types(params)
    created_ok = _created_filter(params)
    delivery_success = read_bool(params, "delivery_success")
    limit = read_int(params, "limit", minimum=1, maximum=100) or 10
    starting_after = read_str(params, "starting_after")
    ending_before = read_str(params, "ending_before")
    if starting_after is not None and ending_before is not None:
        raise invalid_request(
            "You may only specify one of these parameters: ending_before, starting_after."
        )
    # Insertion order is creation order, so reversed it is Stripe's newest-first order, with
    # events of the same second in a stable order that paging can rely on.
    found = [
        event
        for event in reversed(state.events.values())
        if _matches_type(event["type"], types)
        and created_ok(event["created"])
        and (delivery_success is None or _delivered(state, event) == delivery_success)
    ]
    if starting_after is not None:
        position = _position(state, found, starting_after, "starting_after")
        rest = found[position + 1 :]
        return rest[:limit], len(rest) > limit
    if ending_before is not None:
        position = _position(state, found, ending_before, "ending_before")
        before = found[:position]
        return before[-limit:], len(before) > limit
    return found[:limit], len(found) > limit


def _position(state: SandboxState, found: list[Obj], event_id: str, param: str) -> int:
    """Where the cursor event sits in ``found``; if the filters leave it out, where it would."""
    if event_id not in state.events:
        raise resource_missing("event", event_id, param=param)
    rank = {key: index for index, key in enumerate(reversed(state.events))}
    newer = sum(1 for event in found if rank[event["id"]] < rank[event_id])
    if newer < len(found) and found[newer]["id"] == event_id:
        return newer
    return newer if param == "ending_before" else newer - 1
