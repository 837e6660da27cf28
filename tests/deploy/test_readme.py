"""The README is the front door and docs/ holds the rest; both stay true to the code."""

from __future__ import annotations

import re

import msgspec

from auth_service import AuthSettings
from facturation_service.settings import FacturationSettings
from facturation_service.worker import HANDLED_EVENT_TYPES
from gateway import GatewaySettings
from stripe_sandbox import SandboxSettings
from tests.deploy.manifests import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
ENV_EXAMPLE = ROOT / ".env.example"
# Read by run_service itself, not by a settings class.
PROCESS_VARIABLES = {"LOG_LEVEL", "FORWARDED_ALLOW_IPS"}


def _docs_text() -> str:
    return "\n".join(page.read_text() for page in sorted(DOCS.glob("*.md")))


def _deploy_section() -> str:
    deploy = (DOCS / "deploy.md").read_text()
    return deploy.split("<!-- section: deploy -->")[1].split("<!-- /section: deploy -->")[0]


def _example_variables() -> set[str]:
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def test_the_readme_stays_a_front_door() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 200
    assert "make dev" in README.read_text()
    assert "make test" in README.read_text()
    assert ".env.example" in README.read_text()


def test_every_page_the_readme_links_exists_and_every_doc_is_linked() -> None:
    linked = set(re.findall(r"\]\((docs/[\w./-]+\.md)\)", README.read_text()))
    assert linked
    assert [path for path in sorted(linked) if not (ROOT / path).is_file()] == []
    assert {f"docs/{page.name}" for page in DOCS.glob("*.md")} == linked


def test_links_between_docs_point_to_pages_that_exist() -> None:
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([\w-]+\.md)(?:#[\w-]+)?\)", page.read_text()):
            assert (DOCS / target).is_file(), f"{page.name} links {target}"


def test_every_variable_in_env_example_is_documented_in_docs() -> None:
    documented = _docs_text()
    variables = _example_variables()
    assert len(variables) > 40
    assert sorted(name for name in variables if f"`{name}`" not in documented) == []


def test_every_setting_of_every_service_is_in_env_example() -> None:
    settings: list[type[msgspec.Struct]] = [
        AuthSettings,
        FacturationSettings,
        GatewaySettings,
        SandboxSettings,
    ]
    names = {f.name.upper() for cls in settings for f in msgspec.structs.fields(cls)}
    assert sorted(names - _example_variables()) == []
    assert sorted(_example_variables() - names - PROCESS_VARIABLES) == []


def test_events_to_register_with_stripe_are_exactly_those_facturation_handles() -> None:
    listed = _deploy_section().split("<!-- stripe-events -->")[1].split("<!-- /stripe-events -->")
    assert set(re.findall(r"`([a-z_.]+)`", listed[0])) == HANDLED_EVENT_TYPES


def test_files_the_deploy_section_names_exist() -> None:
    named = set(re.findall(r"`((?:deploy|tests)/[\w./-]+)`", _deploy_section()))
    named.discard("deploy/.env")  # the operator's own copy of compose.env.example, git-ignored
    assert named, "the section names its files"
    assert [path for path in sorted(named) if not (ROOT / path).exists()] == []


def test_files_and_modules_the_docs_name_exist() -> None:
    text = _docs_text() + README.read_text()
    named = set(
        re.findall(
            r"`((?:deploy|tests|spa|scripts|shared|gateway|auth_service|"
            r"facturation_service|stripe_sandbox)/[\w./-]*[\w/])`",
            text,
        )
    )
    named.discard("deploy/.env")
    assert len(named) > 20
    assert [path for path in sorted(named) if not (ROOT / path).exists()] == []
