"""`isobench bench <sha>`: benchmark base, human and (optionally) a patch, without an agent."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from executor.bench.results import BenchResults
from executor.bench.run import BenchOptions, benchmark
from executor.cli.common import (console, image_input_options, job_options, limits_from,
                                 log_line, new_run_id, reap_dead_controllers, record_options,
                                 sandbox_options, sigterm_as_interrupt, trial_design,
                                 trial_options,
                                 vllm_build_options)
from executor.cli.summary import results_rows
from executor.cli.predictions import predictions_option
from executor.errors import UserInputError
from executor.predictions import load_predictions, prediction_for
from executor.journal import write_bytes_atomic, write_json_atomic
from executor.pipeline import RunOptions, ensure_images
from executor.resolve import resolve_job
from executor.state import PATCH_NAME
from executor.task import CommitJob

# A verdict about the code (improved ... incorrect) is a finished measurement: exit 0.
VERDICT_EXIT = {"apply_failed": 11, "build_failed": 15, "bench_failed": 15}
EXIT_INTERRUPTED = 130


def bench_dir(state_dir: Path, job: CommitJob, run_id: str) -> Path:
    """STATE/bench/<task>/<run_id>/<item_id>/: results.json, agent.patch, logs/."""
    safe = lambda s: "".join(c if c.isalnum() or c in "._-" else "_" for c in s)  # noqa: E731
    return state_dir / "bench" / safe(job.task.name) / safe(run_id) / safe(job.item_id)


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
        manifest = run_dir / "manifest.json"
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
    table.add_row("record", str(out_dir / "results.json"))
    console.print(table)


def register(group: click.Group) -> None:
    @group.command("bench")
    @click.argument("sha")
    @job_options
    @click.option("--patch", "patch_file", type=click.Path(path_type=Path),
                  help="Agent patch to benchmark as the 'agent' variant.")
    @click.option("--run", "run_dir", type=click.Path(path_type=Path),
                  help=f"A run-commit item directory: benchmark its {PATCH_NAME}.")
    @predictions_option
    @record_options
    @trial_options
    @click.option("--aa", is_flag=True,
                  help="Add 'base2', a second copy of base: an A/A control of the setup.")
    @click.option("--min-effect", type=click.FloatRange(0, 1, min_open=True),
                  default=BenchOptions().min_effect, show_default=True,
                  help="Smallest speedup that counts, as a fraction (0.02 = 2%).")
    @click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True),
                  default=BenchOptions().alpha, show_default=True,
                  help="Chance of calling identical code changed (alpha/2 per direction).")
    @click.option("--trial-timeout", type=click.IntRange(1), default=BenchOptions().timeout_s,
                  show_default=True, help="Seconds one benchmark run may take.")
    @click.option("--lock-clocks/--no-lock-clocks", default=BenchOptions().lock_clocks,
                  show_default=True, help="With --gpus and pynvml: try to lock the GPU clocks "
                                          "(needs root; recorded either way, always reset).")
    @click.option("--json", "as_json", is_flag=True, help="Also print results.json on stdout.")
    @sandbox_options
    @image_input_options
    def bench_cmd(sha, task_file, repo, base, item_id, patch_file, run_dir, predictions_path,
                  state_dir, run_id, trials, max_trials, warmup, seed, aa, min_effect, alpha,
                  trial_timeout, lock_clocks, as_json, gpus, cpus, cpuset, memory, pids,
                  **image_inputs):
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
        job = resolve_job(sha, task_file=task_file, repo=repo, item_id=item_id, base=base)
        patch = load_patch(patch_file, run_dir, job, predictions_path)
        reap_dead_controllers()
        run_id = run_id or new_run_id()
        out_dir = bench_dir(state_dir, job, run_id)
        limits = limits_from(cpus, cpuset, memory, pids)
        options = BenchOptions(**trial_design(trials, max_trials), warmup=warmup, seed=seed,
                               aa=aa, gpus=gpus, limits=limits, timeout_s=trial_timeout,
                               min_effect=min_effect, alpha=alpha, lock_clocks=lock_clocks)
        agent = f", agent patch {len(patch)} bytes" if patch else ""
        log_line(f"{job.task.name} {job.item_id}: human {job.human_sha[:12]}, base "
                 f"{job.base_sha[:12]}{agent}")
        try:
            _, images = ensure_images(job, RunOptions(
                state_dir=state_dir, run_id=run_id, gpus=gpus, limits=limits,
                vllm=vllm_build_options(**image_inputs)),
                                      out_dir / "logs", log_line)
            results = benchmark(job, images, patch, options, out_dir / "logs", run_id,
                                log_line)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow]: containers removed, no results")
            sys.exit(EXIT_INTERRUPTED)
        write_json_atomic(out_dir / "results.json", results)
        if patch is not None:
            write_bytes_atomic(out_dir / "agent.patch", patch)
        print_results(results, out_dir)
        if as_json:
            click.echo(results.model_dump_json(indent=2))
        sys.exit(VERDICT_EXIT.get(results.verdict, 0))
