"""`isobench status` answers "where are we?" on ISO-Bench's own layout (isobench_state.py)."""

from __future__ import annotations

from click.testing import CliRunner

from executor.cli import cli
from executor.views.status import build_report
from executor.core.task import load_plan
from tests.unit.isobench_state import write_isobench_state


def test_done_and_remaining_follow_the_trajectories_own_times(tmp_path):
    state = write_isobench_state(tmp_path)
    report = build_report(state, plan=load_plan(tmp_path / "plan.json"))
    runs = {r.agent: r for r in report.runs}
    trae, claude = runs["trae"], runs["claude_code"]
    assert (trae.task, trae.planned, trae.succeeded, trae.patch_kept, trae.failed,
            trae.unknown, trae.remaining) == ("vllm_core", 6, 3, 1, 0, 0, 3)
    items = {i.item_id: i for i in trae.items}
    assert {k: i.state for k, i in items.items()} == {
        "vllm_core-0000": "succeeded", "vllm_core-0001": "remaining",
        "vllm_core-0002": "succeeded", "vllm_core-0003": "succeeded",
        "vllm_core-0004": "remaining", "vllm_core-0005": "remaining"}
    # Time order, not directory order: the 401 ran first, the retryable 429 last.
    assert items["vllm_core-0001"].sequence == ["auth", "rate_limit"]
    assert items["vllm_core-0000"].sequence == ["success", "auth"]
    assert items["vllm_core-0002"].patch_kept and "task_done" in items["vllm_core-0002"].reason
    # The empty journal is listed, not dropped.
    assert [u.split(": ")[-1] for u in report.unreadable] == ["empty or not JSON"]
    assert "vllm_core-0004/journal.json" in report.unreadable[0]
    # gpt-5 is priced from the table; claude_code's cost is the one it reported.
    assert trae.usage.cost_usd and trae.unpriced_attempts == 0
    assert (claude.planned, claude.succeeded, claude.unknown, claude.failed,
            claude.remaining) == (6, 1, 1, 0, 4)
    assert claude.usage.cost_usd == 1.18 and claude.usage.output_tokens == 18740
    assert "writes no trajectory" in {i.item_id: i for i in claude.items}[
        "vllm_core-0001"].reason


def test_terminal_view_totals_first_and_task_filter(tmp_path):
    state = write_isobench_state(tmp_path)
    plan = str(tmp_path / "plan.json")
    out = CliRunner().invoke(cli, ["status", str(state), "--plan", plan],
                             env={"COLUMNS": "100"})
    assert out.exit_code == 0, out.output
    print(out.output)  # the acceptance evidence: pytest -s shows it
    lines = out.output.splitlines()
    assert len(lines) < 40
    trae_row = next(line for line in lines if "vllm_core · trae · gpt-5" in line)
    assert trae_row.split()[-8:] == ["6", "3", "1", "0", "-", "-", "3", "$0.03"]
    assert "1 file(s) exist but could not be read" in out.output
    assert "vllm_core-0002" not in out.output  # item details only under --details
    detailed = CliRunner().invoke(cli, ["status", str(state), "--plan", plan, "--details"],
                                  env={"COLUMNS": "100"})
    assert "done by a kept patch: 1 item(s)" in detailed.output
    one = CliRunner().invoke(cli, ["status", str(state), "--plan", plan, "--task", "vllm_core",
                                   "--agent", "trae", "--json"])
    assert '"succeeded": 3' in one.output and '"remaining": 3' in one.output
