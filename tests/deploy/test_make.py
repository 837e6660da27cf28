"""`make test` on a fresh machine: what it installs before the suite runs, and how it stops when
it cannot (the `browser` step, exercised with overridden paths so nothing is installed here)."""

from __future__ import annotations

import shutil
import subprocess

from tests.deploy.manifests import ROOT

MAKEFILE = ROOT / "Makefile"
MISSING = "/nonexistent/chromedriver"


def make(*args: str) -> subprocess.CompletedProcess[str]:
    make_binary = shutil.which("make")
    assert make_binary is not None, "make is part of the toolchain the README names"
    return subprocess.run(
        [make_binary, "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_test_installs_newman_and_the_browser_before_running_the_suite() -> None:
    (rule,) = [line for line in MAKEFILE.read_text().splitlines() if line.startswith("test:")]
    assert rule.split(":", 1)[1].split() == ["$(STAMP)", "$(NEWMAN)", "browser"]


def test_without_root_a_missing_browser_stops_with_one_line_naming_the_packages() -> None:
    result = make("browser", f"CHROMEDRIVER={MISSING}", "RUN_AS_UID=1000")
    assert result.returncode != 0
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "sudo apt-get install -y chromium chromium-driver" in line
    assert MISSING in line


def test_as_root_a_missing_browser_is_installed_with_apt_get_then_checked_again() -> None:
    # APT_GET=echo: the commands are shown, not run; the path stays missing, so the re-check fails.
    result = make("browser", f"CHROMEDRIVER={MISSING}", "RUN_AS_UID=0", "APT_GET=echo apt-get")
    ran = result.stdout.splitlines()
    assert "apt-get update -qq" in ran
    assert "apt-get install -y -qq chromium chromium-driver" in ran
    assert ran.index("apt-get update -qq") < ran.index(
        "apt-get install -y -qq chromium chromium-driver"
    )
    assert result.returncode != 0
    assert f"but {MISSING} is still missing" in result.stderr


def test_with_the_browser_present_nothing_is_installed() -> None:
    # Any executable stands in for a present browser; APT_GET=false would fail if it were called.
    result = make("browser", "CHROMIUM=/bin/sh", "CHROMEDRIVER=/bin/sh", "APT_GET=false")
    assert result.returncode == 0
    assert "apt-get" not in result.stdout + result.stderr


def test_ci_leaves_the_installs_to_make_test() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "apt-get" not in ci
    assert "npm install" not in ci
    commands = [line.strip() for line in ci.splitlines() if line.startswith("make ")]
    assert commands == ["make install", "make lint", "make test"]
    assert "TEST_DATABASE_URL" in ci
