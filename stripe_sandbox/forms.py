"""Stripe's form encoding: ``line_items[0][price_data][unit_amount]=1200`` ↔ nested values, and
typed readers that answer bad input with Stripe's own error codes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from stripe_sandbox.errors import invalid_request, resource_missing

__all__ = [
    "Params",
    "decode_form",
    "page_after",
    "read_bool",
    "read_int",
    "read_metadata",
    "read_str",
    "reject_unknown",
]

Params = dict[str, Any]
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
# Sent by clients as request options or headers, never as API parameters.
_REQUEST_OPTIONS = {
    "api_key",
    "content_type",
    "headers",
    "idempotency_key",
    "max_network_retries",
    "stripe_account",
    "stripe_context",
    "stripe_version",
}


def decode_form(raw: str) -> Params:
    """Nested dicts and lists from bracket notation; ``a[]`` appends, ``a[0]`` indexes."""
    result: Params = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        match = _KEY.match(key)
        if match is None:
            raise invalid_request(f"Invalid parameter name: {key}", param=key)
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        node: Params = result
        for depth, segment in enumerate(path):
            name = str(len(node)) if segment == "" else segment
            if depth == len(path) - 1:
                if isinstance(node.get(name), dict):
                    raise invalid_request(f"Invalid parameter: {key}", param=key)
                node[name] = value
            else:
                child = node.setdefault(name, {})
                if not isinstance(child, dict):
                    raise invalid_request(f"Invalid parameter: {key}", param=key)
                node = child
    listified: Params = _listify(result)
    return listified


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    items = {key: _listify(item) for key, item in value.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def reject_unknown(params: Mapping[str, Any], allowed: type) -> None:
    """``allowed`` is stripe-python's TypedDict of the endpoint's parameters."""
    known = set(getattr(allowed, "__annotations__", {})) - _REQUEST_OPTIONS
    for name in params:
        if name not in known:
            raise invalid_request(
                f"Received unknown parameter: {name}", param=name, code="parameter_unknown"
            )


def _lookup(params: Mapping[str, Any], name: str) -> Any:
    return params.get(name)


def read_str(
    params: Mapping[str, Any], name: str, *, param: str | None = None, required: bool = False
) -> str | None:
    value = _lookup(params, name)
    label = param or name
    if value is None or value == "":
        if required:
            raise invalid_request(
                f"Missing required param: {label}.", param=label, code="parameter_missing"
            )
        return None
    if not isinstance(value, str):
        raise invalid_request(
            f"Invalid string: {label} must be a string",
            param=label,
            code="parameter_invalid_string",
        )
    return value


def read_int(
    params: Mapping[str, Any],
    name: str,
    *,
    param: str | None = None,
    required: bool = False,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    raw = read_str(params, name, param=param, required=required)
    label = param or name
    if raw is None:
        return None
    if not re.fullmatch(r"-?\d{1,18}", raw):
        raise invalid_request(
            f"Invalid integer: {raw}", param=label, code="parameter_invalid_integer"
        )
    value = int(raw)
    if minimum is not None and value < minimum:
        raise invalid_request(
            f"This value must be greater than or equal to {minimum}.",
            param=label,
            code="parameter_invalid_integer",
        )
    if maximum is not None and value > maximum:
        raise invalid_request(
            f"This value must be less than or equal to {maximum}.",
            param=label,
            code="parameter_invalid_integer",
        )
    return value


def read_bool(params: Mapping[str, Any], name: str, *, param: str | None = None) -> bool | None:
    raw = read_str(params, name, param=param)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise invalid_request(
            f"Invalid boolean: {raw}", param=param or name, code="parameter_invalid_boolean"
        )
    return raw == "true"


def read_metadata(
    params: Mapping[str, Any], name: str = "metadata", *, param: str | None = None
) -> dict[str, str]:
    """Stripe's limits: 50 keys, keys up to 40 characters, values up to 500."""
    value = _lookup(params, name)
    label = param or name
    if value is None or value == "":
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid_request(
            f"Invalid object: {label}", param=label, code="parameter_invalid_object"
        )
    if len(value) > 50:
        raise invalid_request("Metadata may have at most 50 keys.", param=label)
    for key, item in value.items():
        if len(key) > 40 or len(item) > 500:
            raise invalid_request(
                "Metadata keys are at most 40 characters and values at most 500.",
                param=f"{label}[{key}]",
            )
    return {key: item for key, item in value.items() if item != ""}


def page_after(
    found: list[dict[str, Any]], params: Mapping[str, Any], *, kind: str, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Stripe's cursor pagination over ``found`` (newest first): the ``limit`` objects after
    ``starting_after`` (404 when it is not among them) and whether more follow."""
    starting_after = read_str(params, "starting_after")
    if starting_after is not None:
        ids = [obj["id"] for obj in found]
        if starting_after not in ids:
            raise resource_missing(kind, starting_after, param="starting_after")
        found = found[ids.index(starting_after) + 1 :]
    return found[:limit], len(found) > limit
