"""Each package's public surface is what its ``__init__`` defines, derived with ``vars()`` as
httpx does: a name added without ``__all__`` (or listed but gone) fails here."""

from __future__ import annotations
import __future__

import importlib
from types import ModuleType

import pytest

PACKAGES = ["shared", "gateway", "auth_service", "facturation_service", "stripe_sandbox"]


def defined_public_names(package: ModuleType) -> list[str]:
    return sorted(
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        # Submodules become attributes once imported; `from __future__ import annotations` too.
        and not isinstance(value, ModuleType | __future__._Feature)
    )


@pytest.mark.parametrize("name", PACKAGES)
def test_the_public_names_a_package_defines_are_exactly_its_all(name: str) -> None:
    package = importlib.import_module(name)
    assert sorted(package.__all__) == defined_public_names(package)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_constants_first_then_case_sensitively(name: str) -> None:
    names = list(importlib.import_module(name).__all__)
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
