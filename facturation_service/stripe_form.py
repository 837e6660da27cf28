"""Stripe's form encoding of a request's parameters, byte for byte the SDK's, for the one request
on a hot path (``POST /v1/checkout/sessions``, see ``stripe_api.StripeApi``).

The SDK flattens nested parameters into ``key[sub][0][leaf]`` pairs and hands them to
``urllib.parse.urlencode``, which quotes each key character by character (``[`` and ``]`` are not
safe to it), then turns ``%5B`` and ``%5D`` back into brackets. On a Checkout Session's twenty
pairs that was about 115 µs of CPU a request here (docs/benchmarks.md). The keys a service sends
are few and always the same (``line_items[0][price_data][currency]``, ...): each is quoted once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus

__all__ = ["encode_form"]


def encode_form(params: Mapping[str, Any]) -> str:
    """``params`` as the SDK's requestor encodes them: ``None`` left out, booleans as ``true`` or
    ``false``, lists indexed from 0, nested mappings as ``key[sub]``, spaces as ``+``.

    Raises:
        TypeError: a value the SDK would encode in a way of its own (a ``datetime``, a Stripe
            object, ``None`` or a boolean inside a list): the hot path sends none of them.
    """
    return "&".join(f"{_key(key)}={_value(value)}" for key, value in _pairs("", params))


def _pairs(prefix: str, params: Mapping[str, Any]) -> Iterator[tuple[str, str | int]]:
    for name, value in params.items():
        if value is None:
            continue
        key = f"{prefix}[{name}]" if prefix else name
        if isinstance(value, Mapping):
            yield from _pairs(key, value)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                item_key = f"{key}[{index}]"
                if isinstance(item, Mapping):
                    yield from _pairs(item_key, item)
                elif isinstance(item, str | int) and not isinstance(item, bool):
                    yield item_key, item
                else:
                    raise TypeError(f"cannot form-encode {type(item).__name__} in {item_key}")
        elif isinstance(value, bool):
            yield key, "true" if value else "false"
        elif isinstance(value, str | int):
            yield key, value
        else:
            raise TypeError(f"cannot form-encode {type(value).__name__} in {key}")


@lru_cache(maxsize=1024)
def _key(key: str) -> str:
    return _brackets(quote_plus(key))


def _value(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return _brackets(quote_plus(value))


def _brackets(quoted: str) -> str:
    return quoted.replace("%5B", "[").replace("%5D", "]")
