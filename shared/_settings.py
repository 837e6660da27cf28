"""Settings read once from the environment into frozen msgspec Structs.

The one naming rule: a settings field is named after its environment variable, in lower case
(``facturation_webhook_concurrency`` reads ``FACTURATION_WEBHOOK_CONCURRENCY``). No ``rename``,
no ``msgspec.field(name=...)``: grepping a variable finds the field that reads it.
``load_settings`` refuses a class that breaks the rule.

Lists and tuples are comma-separated. A field without a default is required. Every numeric
setting carries a ``msgspec.Meta`` range (the aliases below, or its own), so an out-of-range value
stops start-up in one line naming the variable.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

import msgspec

from shared._exceptions import SettingsError

__all__ = [
    "NonNegative",
    "Positive",
    "PositiveSeconds",
    "Seconds",
    "Share",
    "env_name",
    "load_settings",
]

SettingsT = TypeVar("SettingsT", bound=msgspec.Struct)

# Ranges shared by the services' settings; the upper bounds only catch typos (a day, a million).
Positive = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
"""A count or size of at least 1."""
NonNegative = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]
"""A count where 0 turns the feature off."""
Seconds = Annotated[float, msgspec.Meta(ge=0, le=86_400)]
"""A duration where 0 turns the feature off, at most a day."""
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
"""A timeout or period: more than 0, at most a day."""
Share = Annotated[float, msgspec.Meta(ge=0, le=1)]
"""A proportion between 0 and 1."""


def env_name(field: msgspec.structs.FieldInfo) -> str:
    return field.name.upper()


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_sequence(typing.get_args(annotation)[0])
    if origin in (list, tuple, frozenset, set):
        return True
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return any(_is_sequence(arg) for arg in typing.get_args(annotation))
    return False


def _check_naming_rule(cls: type[msgspec.Struct]) -> None:
    renamed = [f.name for f in msgspec.structs.fields(cls) if f.encode_name != f.name]
    if renamed:
        raise TypeError(
            f"{cls.__name__}: settings fields are named after their variable, not renamed "
            f"({', '.join(renamed)})"
        )


def load_settings(cls: type[SettingsT], environ: Mapping[str, str] | None = None) -> SettingsT:
    """Build ``cls`` from the environment.

    Raises:
        SettingsError: one line naming the first missing or malformed variable.
        TypeError: ``cls`` renames a field (a programming error, not a setting).
    """
    _check_naming_rule(cls)
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
