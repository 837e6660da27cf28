"""The Postman collection, run by newman against the whole offline stack: every request and
every test in it passes."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support.offline_stack import start_offline_stack
from tests.support.processes import ROOT

POSTMAN = ROOT / "deploy" / "postman"
COLLECTION = POSTMAN / "facturation.postman_collection.json"


def newman() -> str:
    """newman from ``npm install newman`` at the repository root, else from PATH."""
    local = ROOT / "node_modules" / ".bin" / "newman"
    found = str(local) if local.exists() else shutil.which("newman")
    assert found, "newman is not installed: run `npm install --no-save newman` at the repo root"
    return found


def count_requests(items: list[dict[str, Any]]) -> int:
    return sum(count_requests(item["item"]) if "item" in item else 1 for item in items)


async def test_newman_runs_every_request_of_the_collection_with_no_failure(
    tmp_path: Path,
) -> None:
    report = tmp_path / "newman.json"
    async with start_offline_stack(tmp_path) as offline:
        result = await asyncio.to_thread(
            subprocess.run,
            [
                newman(),
                "run",
                str(COLLECTION),
                "--environment",
                str(POSTMAN / "facturation.postman_environment.json"),
                "--env-var",
                f"baseUrl={offline.url}",
                "--env-var",
                f"webhookSecret={offline.webhook_secret}",
                # The subscription folder pays at the sandbox, as the embedded form would.
                "--env-var",
                f"sandboxUrl={offline.sandbox.url}",
                # The operations refund route is private: newman reaches facturation directly.
                "--env-var",
                f"opsUrl={offline.stack.facturation_url}",
                "--env-var",
                f"internalToken={offline.stack.internal_token}",
                "--reporters",
                "cli,json",
                "--reporter-json-export",
                str(report),
                "--color",
                "off",
                "--timeout-request",
                "20000",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        logs = "\n".join(p.logs()[-3000:] for p in offline.processes)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n--- service logs ---\n{logs}"
    stats = json.loads(report.read_text())["run"]["stats"]
    expected = count_requests(json.loads(COLLECTION.read_text())["item"])
    # The invoice listing polls itself until the events are processed, so it may run again.
    assert stats["requests"]["total"] >= expected
    assert stats["requests"]["failed"] == 0
    assert stats["assertions"]["total"] >= 2 * expected - 10
    assert stats["assertions"]["failed"] == 0
    assert "deprecated" not in result.stdout
