"""Settings read once from the environment into frozen msgspec Structs.

A settings class is a ``msgspec.Struct``; each field is read from the environment variable named
by the field's encoded name in upper case (use ``rename`` to pick another name). Lists and tuples
are comma-separated. A field without a default is required.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from shared._exceptions import SettingsError

__all__ = ["env_name", "load_settings"]

SettingsT = TypeVar("SettingsT", bound=msgspec.Struct)


def env_name(field: msgspec.structs.FieldInfo) -> str:
    return field.encode_name.upper()


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_sequence(typing.get_args(annotation)[0])
    if origin in (list, tuple, frozenset, set):
        return True
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return any(_is_sequence(arg) for arg in typing.get_args(annotation))
    return False


def load_settings(cls: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
    """Build ``cls`` from the environment.

    Raises:
        SettingsError: one line naming the first missing or malformed variable.
    """
    environ = os.environ if environ is None else environ
    # Extras kept: msgspec.Meta constraints (ge=, pattern=) are checked by convert below.
    hints = typing.get_type_hints(cls, include_extras=True)
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        name = env_name(field)
        raw = environ.get(name)
        if raw is None or raw == "":
            if field.required:
                raise SettingsError(f"missing required setting {name}")
            continue
        annotation = hints[field.name]
        value: Any = raw
        if _is_sequence(annotation):
            value = [part.strip() for part in raw.split(",") if part.strip()]
        try:
            values[field.name] = msgspec.convert(value, annotation, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"malformed setting {name}: {exc}") from None
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"invalid settings for {cls.__name__}: {exc}") from None
