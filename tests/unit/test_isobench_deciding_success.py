"""An item done twice rests on its verified finish, not on a later kept must-patch patch."""

from __future__ import annotations

from executor.views.export_predictions import export_predictions
from executor.views.status import build_report
from tests.unit.isobench_state import PLAN, add_later_kept_patch, write_isobench_state


def test_a_verified_finish_beats_a_later_kept_patch(tmp_path):
    state = write_isobench_state(tmp_path)
    add_later_kept_patch(state)
    trae = next(r for r in build_report(state, plan=PLAN).runs if r.agent == "trae")
    item = next(i for i in trae.items if i.item_id == "vllm_core-0003")
    assert item.sequence == ["success", "success"]
    assert item.reason.startswith("attempt 1:") and not item.patch_kept
    found, _ = export_predictions(state, run_ids=("vllm_core/trae/gpt-5",), plan=PLAN)
    patch = next(p for p in found if p.instance_id == "vllm_core-0003").model_patch
    assert "kept later" not in patch
