"""Stripe's form encoding of a request's parameters, byte for byte the SDK's, for the one request
on a hot path (``POST /v1/checkout/sessions``, see ``stripe_api.StripeApi``).

The SDK flattens nested parameters into ``key[sub][0][leaf]`` pairs and hands them to
``urllib.parse.urlencode``, which quotes each key character by character (``[`` and ``]`` are not
safe to it), then turns ``%5B`` and ``%5D`` back into brackets. On a Checkout Session's twenty
pairs that was about 115 µs of CPU a request here (docs/benchmarks.md). The keys a service sends
are few and always the same (``line_items[0][price_data][currency]``, ...): each is quoted once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus

__all__ = ["encode_form"]

_LEFT_AS_IS = re.compile(r"[A-Za-z0-9_.~-]*")
"""What ``quote_plus`` leaves as it is (ids, currencies, modes): such a value is sent unquoted."""


def encode_form(params: Mapping[str, Any]) -> str:
    """``params`` as the SDK's requestor encodes them: ``None`` left out, booleans as ``true`` or
    ``false``, lists indexed from 0, nested mappings as ``key[sub]``, spaces as ``+``.

    Raises:
        TypeError: a value the SDK would encode in a way of its own (a ``datetime``, a Stripe
            object, ``None`` or a boolean inside a list): the hot path sends none of them.
    """
    pairs: list[str] = []
    _flatten("", params, pairs)
    return "&".join(pairs)


def _flatten(prefix: str, params: Mapping[str, Any], pairs: list[str]) -> None:
    for name, value in params.items():
        if value is None:
            continue
        key = f"{prefix}[{name}]" if prefix else name
        if isinstance(value, dict):
            _flatten(key, value, pairs)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                item_key = f"{key}[{index}]"
                if isinstance(item, dict):
                    _flatten(item_key, item, pairs)
                elif isinstance(item, str | int) and not isinstance(item, bool):
                    pairs.append(f"{_key(item_key)}={_value(item)}")
                else:
                    raise TypeError(f"cannot form-encode {type(item).__name__} in {item_key}")
        elif isinstance(value, bool):
            pairs.append(f"{_key(key)}={'true' if value else 'false'}")
        elif isinstance(value, str | int):
            pairs.append(f"{_key(key)}={_value(value)}")
        else:
            raise TypeError(f"cannot form-encode {type(value).__name__} in {key}")


@lru_cache(maxsize=1024)
def _key(key: str) -> str:
    return _brackets(quote_plus(key))


def _value(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    if _LEFT_AS_IS.fullmatch(value):
        return value
    return _brackets(quote_plus(value))


def _brackets(quoted: str) -> str:
    return quoted.replace("%5B", "[").replace("%5D", "]")
