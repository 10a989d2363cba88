"""Several runs of one plan side by side (several agents, or one agent several times).

`--compare` puts two runs beside each other item by item; people comparing agents run the same
plan with five or more. This derives, from the report's runs alone (so report.json already
holds every number it shows), one row per run (what it finished, what it used) and one row per
item with each run's outcome in its own column. Rendered by the report's templates when at
least two runs share an item.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from executor.views.report.model import Report, RunReport

MAX_RUNS = 8  # more columns than this are no longer readable side by side


class RunColumn(BaseModel):
    """One run as a column head and a summary row."""

    agent: str = Field(description="Agent name.")
    model: str = Field(description="Model name.")
    run_id: str = Field(description="Run id.")
    planned: int = Field(description="Items planned.")
    done: int = Field(description="Items truly finished.")
    failed: int = Field(description="Items finally failed.")
    input_tokens: int = Field(description="Tokens in, every attempt.")
    output_tokens: int = Field(description="Tokens out, every attempt.")
    llm_calls: int = Field(description="Model calls, every attempt.")
    cost_usd: float | None = Field(default=None, description="Cost, when the model is priced.")
    agent_minutes: float = Field(description="Agent phase wall time, minutes.")
    verdicts: dict[str, int] = Field(default_factory=dict, description="Verdict -> items.")


class ItemRow(BaseModel):
    """One plan item: its outcome in each run (None: the run does not hold it)."""

    item_id: str = Field(description="Plan item id.")
    cells: list[str | None] = Field(description="Per run, in column order: verdict, or state "
                                    "with the failure's signature.")


class SideBySide(BaseModel):
    """Runs sharing items, one column each."""

    runs: list[RunColumn] = Field(description="The runs, in the report's order.")
    items: list[ItemRow] = Field(description="Every item any of them holds.")


def _column(run: RunReport) -> RunColumn:
    return RunColumn(agent=run.agent, model=run.model, run_id=run.run_id, planned=run.planned,
                     done=run.done, failed=run.failed, input_tokens=run.usage.input_tokens,
                     output_tokens=run.usage.output_tokens, llm_calls=run.usage.llm_calls,
                     cost_usd=run.usage.cost_usd, agent_minutes=round(run.agent_hours * 60, 1),
                     verdicts=dict(run.aggregate.verdicts))


def _cell(run: RunReport, item_id: str) -> str | None:
    commit = next((c for c in run.commits if c.item_id == item_id), None)
    if commit is None:
        return None
    if commit.verdict:
        return commit.verdict
    return f"{commit.state} ({commit.signature})" if commit.signature else commit.state


def side_by_side(report: Report) -> SideBySide | None:
    """The runs side by side, or None when fewer than two runs (or more than MAX_RUNS) share
    an item: then each run's own section says everything."""
    runs = [run for run in report.runs if run.commits]
    if not 2 <= len(runs) <= MAX_RUNS:
        return None
    ids_per_run = [{c.item_id for c in run.commits} for run in runs]
    if not any(a & b for i, a in enumerate(ids_per_run) for b in ids_per_run[i + 1:]):
        return None
    item_ids = sorted(set().union(*ids_per_run))
    return SideBySide(runs=[_column(run) for run in runs],
                      items=[ItemRow(item_id=i, cells=[_cell(run, i) for run in runs])
                             for i in item_ids])
