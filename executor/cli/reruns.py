"""`isobench export`, `isobench rerun`, `isobench compare`: reproducible reruns by others."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from executor.cli.common import (console, engine_option, log_line, sigterm_as_interrupt,
                                  state_dir_option)
from executor.core.errors import UserInputError
from executor.runs.rerun.compare import (DEFAULT_TOLERANCE, HEADER, compare_runs, render_markdown,
                                    rows, summary_lines)
from executor.records.state import new_run_id

EXIT_INTERRUPTED = 130
PATH = click.Path(path_type=Path)


@click.command("export")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--run-id", help="With a state directory as SOURCE: the run to export.")
@click.option("-o", "--out", type=PATH, required=True,
              help="The bundle to write: a new directory, or NAME.tar.")
@click.option("--with-images", is_flag=True,
              help="Add a `docker save` archive of every image (hosts without a registry; "
                   "from the engine the run used: --engine).")
@click.option("--repo/--no-repo", "with_repo", default=True, show_default=True,
              help="Add a git bundle of the items' commits (large for big repositories; "
                   "without it the rerun host needs the repository the task names).")
@engine_option
def export_command(source, run_id, out, with_images, with_repo) -> None:
    """Write one run as a self-contained, secret-free bundle another host can rerun.

    \b
    SOURCE is a run directory (STATE/runs/<task>/<agent>/<model>/<run_id>) or a state
    directory with --run-id. The bundle holds the plan; per item the journal, manifest,
    results, harness patch, prompt and task; the image recipes (Dockerfile text, build args,
    base recipe) with their content tags, image ids and content fingerprints; host facts and
    seeds; a git bundle of the commits; with --with-images the images themselves.
    Anything that looks like a key makes the export fail.

    \b
      isobench export state --run-id 2026-12-02_10-00-00 -o run.bundle
      isobench export state/runs/demo/replay/none/R1 -o run.tar --with-images
    """
    from executor.runs.rerun.export import export_run

    export_run(source, run_id, out, with_images=with_images, with_repo=with_repo, log=log_line)


@click.command("rerun")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@state_dir_option
@click.option("--run-id", help="Run id of the new run (default: rerun-<timestamp>).")
@click.option("--items", help="Only these items, comma-separated (default: all).")
@click.option("--agent", "with_agent", is_flag=True,
              help="Run the agent again instead of re-measuring its recorded patch: offline "
                   "agents as they are, LLM agents on their recorded model traffic (no key, "
                   "no provider).")
@click.option("--agent-python", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="With --agent, trae or openhands: this host's CPython 3.12 install prefix "
                   "(default: the recorded one, if it exists here).")
@click.option("--agent-source", help="With --agent, trae: this host's TRAE checkout or mirror "
                                     "(default: the recorded one, if it exists here).")
@click.option("--cpus", type=float, default=None,
              help="CPU quota of the benchmark containers (default: as recorded).")
@click.option("--cpuset", default=None, help="Pin benchmark containers to these CPUs (default: "
                                             "as recorded).")
@engine_option
def rerun_command(bundle, state_dir, run_id, items, with_agent, agent_python, agent_source, cpus,
                  cpuset) -> None:
    """Rerun an exported bundle on this host and record it as a new run.

    \b
    1. Every file is checked against bundle.json and every patch and recipe against the
       hashes the run recorded: one changed byte refuses the bundle (exit 2).
    2. Images: loaded from the bundle's archive (ids checked), else rebuilt from their
       recipes; a tag that differs or content that drifted from the recorded fingerprint is
       reported with the package or file that changed.
    3. The recorded patches are benchmarked again with the recorded options and seeds, each
       trial in a fresh container. With --agent the agent runs again first, built as the
       recorded command built it: an LLM agent gets its model's answers from the item's
       recorded traffic (the gateway replays model_calls.jsonl; a request it does not hold
       ends the attempt replay_mismatch), so its patch can be compared with the recorded one.
    4. A new run STATE/runs/<task>/<agent>/<model>/<run-id>/ whose journals and manifests
       record rerun_of; rerun.json holds the image checks. Compare with `isobench compare`.

    Exit 0: every image reproduced and every item measured; 1: some image did not reproduce
    or some item failed; 2: bad input or a changed bundle; 130: interrupted.
    """
    from executor.runs.rerun.llm_agent import AgentPaths
    from executor.runs.rerun.rerun import RerunOptions, rerun_bundle

    sigterm_as_interrupt()
    if (agent_python or agent_source) and not with_agent:
        raise UserInputError("--agent-python and --agent-source go with --agent")
    options = RerunOptions(state_dir=state_dir, run_id=run_id or f"rerun-{new_run_id()}",
                           items=[i.strip() for i in (items or "").split(",") if i.strip()],
                           agent=with_agent, cpus=cpus, cpuset=cpuset,
                           agent_paths=AgentPaths(python=agent_python, source=agent_source))
    try:
        record = rerun_bundle(bundle, options, log_line)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: containers removed; the journals say "
                      "where it stopped")
        sys.exit(EXIT_INTERRUPTED)
    table = Table(title=f"rerun of {record.rerun_of}", box=None)
    for name in ("item", "recorded", "rerun", "status"):
        table.add_column(name)
    for item in record.items:
        table.add_row(item.item_id, item.recorded_verdict or "-", item.verdict or "-",
                      item.status + (f" ({item.detail})" if item.detail else ""))
    console.print(table)
    for check in record.images:
        state = ("reproduced" if check.reproducible else
                 f"NOT REPRODUCED: {'tag ' + str(check.rebuilt_tag) if not check.tag_match else ''}"
                 f"{'; '.join(check.drift)}")
        console.print(f"image {check.tag} ({check.source}): {state}", highlight=False)
    failed = [i for i in record.items if i.status not in ("success", "skipped")]
    click.echo(f"{options.state_dir}/runs/.../{options.run_id}: {len(record.items)} item(s); "
               f"{len(record.non_reproducible)} image(s) not reproduced; {len(failed)} failed",
               err=True)
    sys.exit(1 if record.non_reproducible or failed else 0)


@click.command("compare")
@click.argument("run_a", type=click.Path(exists=True, path_type=Path))
@click.argument("run_b", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("--markdown", is_flag=True, help="Print the comparison as Markdown.")
@click.option("--tolerance", type=click.FloatRange(0, 1), default=DEFAULT_TOLERANCE,
              show_default=True, help="Widen each 95% interval by this fraction before "
                                      "asking whether two intervals overlap.")
def compare_command(run_a, run_b, as_json, markdown, tolerance) -> None:
    """Compare two runs of the same items: verdicts, speedups, replay_valid, host differences.

    \b
    RUN_A and RUN_B are run directories (STATE/runs/<task>/<agent>/<model>/<run_id>) or
    bundles: a recorded run and its rerun elsewhere, or two agents on one plan. An item is
    replay_valid when both verdicts agree and each speedup's 95% intervals overlap once
    widened by --tolerance.

    \b
      isobench compare run.bundle state/runs/demo/replay/none/rerun-2026-12-02_11-00-00
    """
    if as_json and markdown:
        raise UserInputError("give --json or --markdown, not both")
    report = compare_runs(run_a, run_b, tolerance)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    if markdown:
        click.echo(render_markdown(report))
        return
    table = Table(title=f"{run_a} vs {run_b}", title_justify="left")
    for name in HEADER:
        table.add_column(name, overflow="fold")
    for row in rows(report):
        table.add_row(*row)
    # stdout: the table is the command's output; wide enough for intervals when piped.
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 170)
    out.print(table)
    for line in summary_lines(report):
        out.print(line, highlight=False)


def register(group: click.Group) -> None:
    for command in (export_command, rerun_command, compare_command):
        group.add_command(command)
