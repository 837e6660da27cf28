"""The README's deploy section stays true to the code it describes."""

from __future__ import annotations

import re

from facturation_service.worker import HANDLED_EVENT_TYPES
from tests.deploy.manifests import ROOT


def _deploy_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("<!-- section: deploy -->")[1].split("<!-- /section: deploy -->")[0]


def test_events_to_register_with_stripe_are_exactly_those_facturation_handles() -> None:
    listed = _deploy_section().split("<!-- stripe-events -->")[1].split("<!-- /stripe-events -->")
    assert set(re.findall(r"`([a-z_.]+)`", listed[0])) == HANDLED_EVENT_TYPES


def test_files_the_deploy_section_names_exist() -> None:
    named = set(re.findall(r"`((?:deploy|tests)/[\w./-]+)`", _deploy_section()))
    named.discard("deploy/.env")  # the operator's own copy of compose.env.example, git-ignored
    assert named, "the section names its files"
    assert [path for path in sorted(named) if not (ROOT / path).exists()] == []
