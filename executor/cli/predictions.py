"""`isobench export-predictions`, and the `--predictions` option of `bench` and `run`."""

from __future__ import annotations

from pathlib import Path

import click

from executor.cli.state_arg import chosen_state, state_input

from executor.core.errors import UserInputError
from executor.views.export_predictions import export_predictions
from executor.records.predictions import PREDICTIONS_NAME, write_predictions
from executor.core.task import load_plan

PREDICTIONS_HELP = ("Agent patches to measure, without running an agent: a SWE-bench-style "
                    "predictions.jsonl (from export-predictions) or a run directory "
                    "(isobench's or ISO-Bench's) holding <item>/model_patch.diff. Each item "
                    "takes the prediction with its item id or its human commit.")


def predictions_option(fn):
    """--predictions PATH"""
    return click.option("--predictions", "predictions_path",
                        type=click.Path(exists=True, path_type=Path),
                        help=PREDICTIONS_HELP)(fn)


@click.command("export-predictions")
@state_input
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(PREDICTIONS_NAME), show_default=True, help="Where to write.")
@click.option("--run-id", "run_ids", multiple=True,
              help="Only these runs (repeatable): a run id, or 'task/agent/model' for "
                   "ISO-Bench's runs.")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Map ISO-Bench's per-invocation item ids to this plan's items.")
@click.option("--all", "everything", is_flag=True,
              help="Also the non-empty patches of items that are not done.")
def export_command(state, state_dir, out, run_ids, plan_file, everything) -> None:
    """Write the agent patches of the runs under STATE as SWE-bench-style predictions
    (instance_id, model_name_or_path, model_patch; plus human_commit).

    \b
      isobench export-predictions state --run-id r1 -o predictions.jsonl
      isobench bench a0476e8c --predictions predictions.jsonl
      isobench run plan.json --predictions predictions.jsonl
    """
    state = chosen_state(state, state_dir)
    found, notes = export_predictions(state, run_ids=tuple(run_ids),
                                      plan=load_plan(plan_file) if plan_file else None,
                                      everything=everything)
    if not found:
        raise UserInputError(f"no patch to export under {state}"
                             + (f" for {', '.join(run_ids)}" if run_ids else ""))
    write_predictions(out, found)
    click.echo(f"{out}: {len(found)} prediction(s)"
               + (f"; skipped {len(notes)} item(s) without a usable patch" if notes else ""),
               err=True)


def register(group: click.Group) -> None:
    group.add_command(export_command)
