"""Honest denominators (executor/core/denominators.py): an item lost to a budget, the provider
or our infrastructure is not the agent's zero, and the aggregate says so."""

from executor.core.denominators import (AGENT, BUDGET, INFRA, MEASURED, NOT_ENDED, PROVIDER,
                                        counts, denominator_line, ending)
from executor.views.report.aggregate import aggregate
from executor.views.report.model import CommitReport, Speedup


def test_each_ending_lands_in_its_category():
    assert ending(measured=True, state="succeeded") == MEASURED
    assert ending(measured=False, state="failed", signature="budget_exhausted") == BUDGET
    assert ending(measured=False, state="failed", signature="rate_limit") == PROVIDER
    assert ending(measured=False, state="failed", signature="quota_exhausted") == PROVIDER
    assert ending(measured=False, state="failed", signature="docker_unreachable") == INFRA
    assert ending(measured=False, state="failed", status="infra_error") == INFRA
    assert ending(measured=False, state="remaining") == NOT_ENDED
    # the agent's own endings count as its zero
    for signature in ("empty_patch", "max_steps", "patch_apply_failed", None):
        assert ending(measured=False, state="failed", signature=signature) == AGENT


def test_the_line_says_measured_of_planned_and_what_the_rest_were():
    line = denominator_line(counts([MEASURED, MEASURED, BUDGET, INFRA, INFRA]))
    assert line == "2 measured of 5 planned; the rest: 2 infrastructure, 1 budget"
    assert denominator_line({MEASURED: 3}) == "3 measured of 3 planned"


def test_the_report_aggregate_does_not_count_lost_items_as_zeros():
    measured = CommitReport(item_id="a", state="succeeded", verdict="improved",
                            speedups=[Speedup(pair="agent/base", speedup=1.5,
                                              verdict="improved")])
    lost = [CommitReport(item_id="b", state="failed", signature="budget_exhausted"),
            CommitReport(item_id="c", state="failed", signature="auth"),
            CommitReport(item_id="d", state="failed", signature="empty_patch")]
    ag = aggregate([measured, *lost])
    assert (ag.measured, ag.planned) == (1, 4)
    assert ag.share_improved.estimate == 1.0  # over the measured one, said as such:
    assert ag.denominator == ("1 measured of 4 planned; the rest: 1 budget, 1 provider "
                              "refusal, 1 agent's own (counts as its zero)")
