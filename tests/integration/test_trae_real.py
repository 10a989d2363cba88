"""The real TRAE against the scripted server, when a TRAE install is at hand.

Set ISOBENCH_TRAE_CLI to a trae-cli built from the pinned revision (see
tests/fixtures/trae/regenerate.py); without it these tests are skipped. They prove that TRAE
accepts the config we render, that the key reaches it through the environment only, and that
its deaths are named by their real cause.
"""

import os
import sys
from pathlib import Path

import pytest

from executor.parts.agents.base import AgentEnding
from executor.parts.agents.trae_trajectory import read_trajectory

TRAE_CLI = os.environ.get("ISOBENCH_TRAE_CLI")
pytestmark = pytest.mark.skipif(not TRAE_CLI, reason="ISOBENCH_TRAE_CLI not set")

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "trae"))
import regenerate  # noqa: E402  (the fixture scenarios, shared rather than copied)


def test_success_with_the_key_from_the_environment(tmp_path):
    run = regenerate.run_scenario("success", TRAE_CLI, tmp_path)
    outcome = read_trajectory(run.trajectory)
    assert run.exit_code == 0 and outcome.ending == AgentEnding.FINISHED
    assert [r.status for r in run.requests] == [200, 200, 200]
    assert all(r.headers["authorization"] == "[REDACTED]" for r in run.requests)
    assert regenerate.TEST_KEY not in run.trajectory + run.output


def test_must_patch_death_exits_zero_and_is_named(tmp_path):
    run = regenerate.run_scenario("must_patch_death", TRAE_CLI, tmp_path)
    outcome = read_trajectory(run.trajectory)
    assert run.exit_code == 0  # which is why the exit code is never evidence
    assert [r.status for r in run.requests] == [200, 200, 200, 400]
    assert outcome.signature.name == "must_patch_tool_output_missing"
    assert run.trae_patch_bytes == 0  # TRAE's own patch is empty: the change is in a commit
