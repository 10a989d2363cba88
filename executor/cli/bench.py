"""`isobench bench <sha>`: benchmark base, human and (optionally) a patch, without an agent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from executor.parts.bench.results import BenchResults
from executor.parts.bench.run import BenchOptions, benchmark
from executor.cli.common import (TRIAL_FIELDS, config_option, console, engine_option, grouped,
                                 image_input_options, job_options, log_line,
                                 reap_dead_controllers, record_options, sandbox_options,
                                 sigterm_as_interrupt)
from executor.cli.jobfile import JobCommand, command_options
from executor.cli.options import model_options
from executor.cli.summary import results_rows
from executor.cli.predictions import predictions_option
from executor.core.errors import UserInputError
from executor.records.predictions import load_predictions, prediction_for
from executor.core.journal import write_bytes_atomic, write_json_atomic
from executor.runs.pipeline import ImageInputs, RunOptions, ensure_images
from executor.runs.preflight import needs_for, preflight
from executor.runs.resolve import JobSource, on_target_device, resolve_source
from executor.core.resources import Resources
from executor.records.state import (BENCH_DIR_NAME, BENCH_PATCH_NAME, LOGS_DIR_NAME, MANIFEST_NAME,
                            PATCH_NAME, RESULTS_NAME, new_run_id)
from executor.core.task import CommitJob
from executor.parts.vllm.jobs import VllmBuildOptions

# A verdict about the code (improved ... incorrect) is a finished measurement: exit 0.
MEASURE_FIELDS = ("aa", "min_effect", "alpha", "timeout_s", "lock_clocks")  # bench's own, beside the trials
VERDICT_EXIT = {"apply_failed": 11, "build_failed": 15, "bench_failed": 15}
EXIT_INTERRUPTED = 130


def bench_dir(state_dir: Path, job: CommitJob, run_id: str) -> Path:
    """STATE/bench/<task>/<run_id>/<item_id>/: results.json, agent.patch, logs/."""
    safe = lambda s: "".join(c if c.isalnum() or c in "._-" else "_" for c in s)  # noqa: E731
    return state_dir / BENCH_DIR_NAME / safe(job.task.name) / safe(run_id) / safe(job.item_id)


def load_patch(patch_file: Path | None, run_dir: Path | None, job: CommitJob,
               predictions: Path | None = None) -> bytes | None:
    """The agent patch from --patch, a run-commit record (--run) or --predictions; None for
    none of them."""
    if patch_file and run_dir:
        raise UserInputError("give either --patch FILE or --run RUN_DIR, not both")
    if predictions is not None and (patch_file or run_dir):
        raise UserInputError("--predictions gives the patch: not with --patch or --run")
    if predictions is not None:
        return prediction_for(load_predictions(predictions), job.item_id,
                              job.human_sha).patch_bytes
    if run_dir is not None:
        if not run_dir.is_dir():
            raise UserInputError(f"--run {run_dir}: not a directory")
        patch_file = run_dir / PATCH_NAME
        if not patch_file.is_file():
            raise UserInputError(f"--run {run_dir}: no {PATCH_NAME} there (give the item "
                                 f"directory of a run-commit record)")
        manifest = run_dir / MANIFEST_NAME
        if manifest.is_file():
            recorded = json.loads(manifest.read_text()).get("commits", {}).get("human")
            if recorded and recorded != job.human_sha:
                raise UserInputError(f"--run {run_dir} is a run of {recorded[:12]}, not of "
                                     f"{job.human_sha[:12]}")
    if patch_file is None:
        return None
    try:
        patch = patch_file.read_bytes()
    except OSError as exc:
        raise UserInputError(f"cannot read patch {patch_file}: {exc.strerror}") from exc
    if not patch.strip():
        raise UserInputError(f"patch {patch_file} is empty: nothing to benchmark")
    return patch


def print_results(results: BenchResults, out_dir: Path) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("commits", f"base {results.commits['base'][:12]}, human "
                             f"{results.commits['human'][:12]}; variants "
                             f"{', '.join(results.variants)}")
    for label, text in results_rows(results):
        table.add_row(label, text)
    table.add_row("record", str(out_dir / RESULTS_NAME))
    console.print(table)


def register(group: click.Group) -> None:
    @group.command("bench", cls=JobCommand)
    @click.argument("sha")
    @config_option
    @job_options
    @grouped("Benchmark", click.option(
        "--patch", "patch_file", type=click.Path(path_type=Path),
        help="Agent patch to benchmark as the 'agent' variant."), click.option(
        "--run", "run_dir", type=click.Path(path_type=Path),
        help=f"A run-commit item directory: benchmark its {PATCH_NAME}."), predictions_option)
    @record_options
    @grouped("Benchmark", model_options(BenchOptions, "options",
                                        only=TRIAL_FIELDS + MEASURE_FIELDS))
    @grouped("Record", click.option("--json", "as_json", is_flag=True,
                                    help="Also print results.json on stdout."))
    @engine_option
    @sandbox_options
    @image_input_options
    def bench_cmd(sha, job_source: JobSource, patch_file, run_dir, predictions_path,
                  state_dir, run_id, options: BenchOptions, as_json, resources: Resources,
                  vllm: VllmBuildOptions):
        """Benchmark base, human and an agent patch of one commit, each trial in a fresh
        container.

        \b
        Variants: base (parent of SHA), human (SHA), agent (base + --patch FILE, or the
        model_patch.diff of a run-commit record with --run RUN_DIR; rebuilt when it touches
        the task's native paths, and gated by the task's tests), base2 with --aa.
        Trials run in randomised interleaved blocks with the same cpuset and GPUs for every
        variant, until every comparison with base is decided (sequential, up to --max-trials)
        or exactly --trials blocks; with --gpus, each trial waits for an idle GPU and records
        its clocks, temperature and power (and, with pynvml, throttling and GPU errors:
        flagged trials are run again). Writes STATE_DIR/bench/<task>/<run_id>/<item>/results.json
        (logs beside it in logs/) and prints a summary table.

        \b
        Example, the embedded demo with an A/A control:
          isobench bench a0476e8c --aa --cpuset 1

        Changes to the task's protected paths (benchmark scripts, tests, start-up hooks)
        are dropped from the patch and named; every variant is measured with the
        reference commit's copies. A speedup the outer timing (wall and cgroup CPU)
        contradicts is `suspect`.

        Exit status: 0 a verdict was reached (improved, matches_human, regressed,
        no_change, inconclusive, suspect, incorrect); 2 bad input; 11 the patch did not apply;
        15 the rebuild or the benchmark failed; 20 infrastructure; 130 interrupted.
        """
        sigterm_as_interrupt()
        job = on_target_device(resolve_source(sha, job_source), vllm.target_device)
        patch = load_patch(patch_file, run_dir, job, predictions_path)
        preflight(needs_for(job, gpus=resources.gpus))  # before anything is written: exit 2
        reap_dead_controllers()
        run_id = run_id or new_run_id()
        out_dir = bench_dir(state_dir, job, run_id)
        agent = f", agent patch {len(patch)} bytes" if patch else ""
        log_line(f"{job.task.name} {job.item_id}: human {job.human_sha[:12]}, base "
                 f"{job.base_sha[:12]}{agent}")
        try:
            _, images = ensure_images(job, RunOptions(
                state_dir=state_dir, run_id=run_id, resources=resources,
                images=ImageInputs(vllm=vllm)),
                                      out_dir / LOGS_DIR_NAME, log_line)
            results = benchmark(job, images, patch, options, out_dir / LOGS_DIR_NAME, run_id,
                                log_line, resources=resources)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow]: containers removed, no results")
            sys.exit(EXIT_INTERRUPTED)
        results = results.model_copy(update={"command_options": command_options()})
        write_json_atomic(out_dir / RESULTS_NAME, results)
        if patch is not None:
            write_bytes_atomic(out_dir / BENCH_PATCH_NAME, patch)
        print_results(results, out_dir)
        if as_json:
            click.echo(results.model_dump_json(indent=2))
        sys.exit(VERDICT_EXIT.get(results.verdict, 0))
