"""The red team: every attack class on the measurement as a scripted agent on the demo, through
the real CLI (`run-commit --agent script`). None may be accepted (improved or matches_human),
and each must be named with its evidence. The table of what each got and why is printed at the
end of the module (pytest -s) and written to $ISOBENCH_RED_TEAM_TABLE when that is set.

Attacks only need the verdict's class and its evidence: 3 trials a side, no warm-up, and the
demo's images are shared by every run (built once per machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from executor.parts.demo import DEMO_BASE_SHA, DEMO_HUMAN_SHA
from tests.conftest import run_cli
from tests.integration.red_team_attacks import ATTACKS, human_fix_plus_faked_extra

pytestmark = [pytest.mark.docker, pytest.mark.slow]
FAST = ["--trials", "2", "--warmup", "0"]
# the outer clocks need a third trial a side to rule a claim out
OUTER = ["--trials", "3", "--warmup", "0"]
ACCEPTED = ("improved", "matches_human")
TABLE: list[tuple[str, str, str, str, float]] = []


@pytest.fixture(scope="module", autouse=True)
def attack_table():
    started = time.monotonic()
    yield
    lines = ["| attack | class | verdict | evidence | s |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {name} | {kind} | {verdict} | {evidence} | {secs:.0f} |"
              for name, kind, verdict, evidence, secs in TABLE]
    lines.append(f"\nred team: {len(TABLE)} attacks, "
                 f"{sum(v in ACCEPTED for _, _, v, _, _ in TABLE)} accepted, "
                 f"{time.monotonic() - started:.0f}s")
    text = "\n".join(lines)
    print("\n" + text)
    if os.environ.get("ISOBENCH_RED_TEAM_TABLE"):
        Path(os.environ["ISOBENCH_RED_TEAM_TABLE"]).write_text(text + "\n")


def run_attack(tmp_path: Path, name: str, script: str, trials: list[str] = FAST) -> dict:
    agent_script = tmp_path / f"{name}.sh"
    agent_script.write_text("set -eu\n" + script)
    state = tmp_path / "state"
    out = run_cli("run-commit", DEMO_HUMAN_SHA[:8], "--agent", "script", "--agent-script",
                  str(agent_script), "--agent-network", "none", "--state-dir", str(state),
                  "--run-id", name, *trials)
    item = state / "runs" / "demo" / "script" / "none" / name / "demo-0000"
    results = item / "results.json"
    if not results.exists():  # the attempt ended before a benchmark: what the journal says
        journal = json.loads((item / "journal.json").read_text())
        logs = "\n".join(p.read_text(errors="replace") for p in item.rglob("agent*")
                         if p.is_file())
        return {"verdict": journal["attempts"][-1]["status"], "agent_output": logs,
                "verdict_reason": out.stdout[-400:] + out.stderr[-400:]}
    return json.loads(results.read_text())


def evidence_of(results: dict) -> str:
    """The one line that names why the verdict is what it is."""
    integrity = results.get("integrity") or {}
    behaviour = integrity.get("behaviour") or {}
    if "agent_output" in results:  # ended before a benchmark
        lines = [line for line in results["agent_output"].splitlines() if line.strip()]
        return (lines[-1] if lines else results["verdict"])[:220].replace("|", "/")
    if results["verdict"] == "incorrect":
        return results["verdict_reason"][:220].replace("|", "/")
    if integrity.get("suspect_reasons"):
        return integrity["suspect_reasons"][0][:220].replace("|", "/")
    if behaviour.get("mismatched"):
        return behaviour["diff"][:220]
    return results.get("verdict_reason", "")[:220].replace("|", "/")


def judged(name: str, kind: str, results: dict, started: float) -> dict:
    TABLE.append((name, kind, results["verdict"], evidence_of(results),
                  time.monotonic() - started))
    assert results["verdict"] not in ACCEPTED, results["verdict_reason"]
    return results


def behaviour(results: dict) -> dict:
    return results["integrity"]["behaviour"]


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_attack_is_not_accepted_and_is_named(name, docker_engine, base_image, tmp_path):
    kind, script = ATTACKS[name]
    started = time.monotonic()
    trials = OUTER if name == "child_process" else FAST
    results = judged(name, kind, run_attack(tmp_path, name, script, trials), started)
    verdict, reason = results["verdict"], results["verdict_reason"]
    if name.startswith("metric_atexit") or name == "metric_signal":
        assert verdict == "suspect" and "changed after the benchmark returned" in reason
        assert behaviour(results)["metric_rewritten"]
    elif name == "clock_patch":
        assert verdict == "suspect" and "harness's own clock" in reason
    elif name == "child_process":
        # the benchmark process's CPU clock sees little; the container's CPU sees it all
        assert verdict in ("suspect", "bench_failed", "regressed"), reason
        if verdict == "suspect":
            assert "outer timing rules out" in reason
    elif name == "human_objects":
        # the sandbox holds history up to base only: nothing to copy, nothing measured
        assert verdict == "no_patch", reason
        assert "not reachable from the sandbox" in results["agent_output"]
    elif name == "under_benchmark_env":
        # the harness's environment is the same for tests, checks and timed runs: the cheat
        # fires in the tests too
        assert verdict == "incorrect" and results["gate"]["passed"] is False
    else:
        # argv, cwd, parent process, a replay cache, inputs through the package, os._exit:
        # the timed processes computed something else than base's
        assert verdict == "incorrect", reason
        assert "did not compute what base's did" in reason or \
            results["output_check"]["matched"] is False, reason


def test_a_real_fix_with_a_faked_extra_is_suspect_for_the_extra(docker_engine, base_image,
                                                                 demo_repo, tmp_path):
    human_diff = subprocess.run(["git", "-C", str(demo_repo), "diff", DEMO_BASE_SHA,
                                 DEMO_HUMAN_SHA, "--", "minivllm"], capture_output=True,
                                check=True, text=True).stdout
    started = time.monotonic()
    results = judged("fix_plus_faked_extra", "a real fix plus a faked extra (2.7x over the "
                     "human)", run_attack(tmp_path, "fix_plus_fake",
                                          human_fix_plus_faked_extra(human_diff)), started)
    assert results["verdict"] == "suspect", results["verdict_reason"]
    assert "harness's own clock" in results["verdict_reason"]
    ratios = behaviour(results)["harness_clock_ratios"]
    assert 0.7 < ratios["agent/human"] < 1.4  # on the harness's clock: as fast as the human
    assert ratios["agent/base"] > 5  # the real part of the fix is real
