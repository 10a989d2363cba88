"""ISO-Bench attempts are keyed by the commit their journal ran, not the directory's item id
(ISO-Bench reused ids for other commits): status, report and export-predictions agree."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from executor.cli import cli
from executor.views.export_predictions import export_predictions
from executor.views.legacy.commit_keys import group_by_commit
from executor.views.report.build import build_report as build_full_report
from executor.views.status import build_report
from tests.unit.isobench_state import (MISFILED_STAMP, PLAN, add_misfiled_success,
                                       write_isobench_state)

HUMAN = {i.item_id: i.human for i in PLAN.items}
MISFILED = f"{MISFILED_STAMP}/vllm_core-0000 ran 01aa01bb, the commit of vllm_core-0001"


def _state(tmp_path: Path) -> Path:
    state = write_isobench_state(tmp_path)
    add_misfiled_success(state)
    return state


def test_status_counts_the_attempt_for_the_commit_it_ran(tmp_path):
    state = _state(tmp_path)
    for plan in (PLAN, None):  # with the plan, and by the names most directories agree on
        trae = next(r for r in build_report(state, plan=plan).runs if r.agent == "trae")
        items = {i.item_id: i for i in trae.items}
        assert items["vllm_core-0000"].sequence == ["success", "auth"]
        assert items["vllm_core-0001"].sequence == ["auth", "success", "rate_limit"]
        assert items["vllm_core-0001"].state == "succeeded"
        assert trae.misfiled == [MISFILED]
    assert (trae.planned, trae.succeeded) == (4, 4)


def test_export_predictions_carry_only_their_own_commits_patch(tmp_path):
    state = _state(tmp_path)
    found, _ = export_predictions(state, run_ids=("vllm_core/trae/gpt-5",), plan=PLAN)
    assert sorted(p.instance_id for p in found) == ["vllm_core-0000", "vllm_core-0001",
                                                    "vllm_core-0002", "vllm_core-0003"]
    assert all(HUMAN[p.instance_id].startswith(p.human_commit) for p in found)
    by_id = {p.instance_id: p for p in found}
    assert "slow = 0001" in by_id["vllm_core-0001"].model_patch
    assert "slow = 0001" not in by_id["vllm_core-0000"].model_patch


def test_report_with_plan_has_one_row_per_planned_commit(tmp_path):
    state = _state(tmp_path)
    report = build_full_report(state, plan=PLAN, human_diffs=False,
                               run_ids=("vllm_core/trae/gpt-5",))
    (run,) = report.runs
    assert [c.item_id for c in run.commits] == [i.item_id for i in PLAN.items]
    assert all(HUMAN[c.item_id].startswith(c.human) for c in run.commits)
    assert run.misfiled == [MISFILED]


def test_status_view_names_the_misfiled_directory(tmp_path):
    state = _state(tmp_path)
    out = CliRunner().invoke(cli, ["status", str(state), "--agent", "trae"],
                             env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "1 directory(ies) ran another item's commit" in out.output
    assert MISFILED in out.output


def test_a_commit_outside_the_plan_never_takes_a_planned_id(tmp_path):
    runs = tmp_path / "runs"
    dirs = []
    for name, human in (("vllm_core-0000", "ffff0000ffff"), ("vllm_core-0000", HUMAN[
            "vllm_core-0000"])):
        d = runs / name
        dirs.append((d, {"commits": {"human": human}}))
    groups = group_by_commit(dirs, PLAN)
    assert sorted(groups.items) == ["vllm_core-0000", "vllm_core-0000@ffff0000"]
    assert [m.item_id for m in groups.misfiled] == ["vllm_core-0000@ffff0000"]


def test_a_name_of_another_scheme_is_a_rename_not_a_mismatch(tmp_path):
    rerun = tmp_path / "2025-11-06_00-00-00" / "vllm_sonnet45_rerun-0007"
    groups = group_by_commit([(rerun, {"commits": {"human": HUMAN["vllm_core-0002"]}})], PLAN)
    assert list(groups.items) == ["vllm_core-0002"] and groups.misfiled == []
