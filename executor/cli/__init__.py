"""`isobench`: the command line. Each command group lives in its own module of this package.

Errors isobench raises on purpose (`IsobenchError`) become one line on stderr and their own
exit code (2 for bad input); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import click

from executor import __version__
from executor.cli.lazy import LazyCommand, LazyGroup

# Each module defines `register(group)`; a command is imported only when it runs (lazy.py).
# Adding a command is one line here, with the first paragraph of its help.
COMMANDS = {
    "bench": LazyCommand("executor.cli.bench", "Benchmark base, human and an agent patch of "
                         "one commit, each trial in a fresh container."),
    "compare": LazyCommand("executor.cli.reruns", "Compare two runs of the same items: "
                           "verdicts, speedups, replay_valid, host differences."),
    "doctor": LazyCommand("executor.cli.doctor", "Check the container engine (--engine), GPU "
                          "runtime, disk and base image; say what to fix."),
    "export": LazyCommand("executor.cli.reruns", "Write one run as a self-contained, "
                          "secret-free bundle another host can rerun."),
    "export-predictions": LazyCommand("executor.cli.predictions", "Write the agent patches of "
                                      "the runs under STATE as SWE-bench-style predictions "
                                      "(instance_id, model_name_or_path, model_patch; plus "
                                      "human_commit)."),
    "images": LazyCommand("executor.cli.images", "Plan, build, list and prune sandbox images "
                          "(content-addressed, reused)."),
    "plan": LazyCommand("executor.cli.batch", "Make a plan.json from commits, an existing "
                        "plan, or the catalogue."),
    "report": LazyCommand("executor.cli.report", "Write a self-contained HTML report (opens "
                          "from file://, offline), report.md and report.json for the runs "
                          "under STATE (isobench's and ISO-Bench's layouts, and `isobench "
                          "bench` results)."),
    "rerun": LazyCommand("executor.cli.reruns", "Rerun an exported bundle on this host and "
                         "record it as a new run."),
    "run": LazyCommand("executor.cli.batch", "Run a plan: every item through the one-commit "
                       "pipeline, on GPU leases (local) or Ray tasks (ray), with retries and "
                       "resume."),
    "run-commit": LazyCommand("executor.cli.run_commit", "Run one perf commit end to end in "
                              "fresh containers."),
    "status": LazyCommand("executor.cli.status", "Where a state directory stands: per run "
                          "planned, done, failed, left, and why."),
}


class IsobenchGroup(LazyGroup):
    """Turns IsobenchError into a one-line message and its exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # click's own (--help, usage errors): no need to import isobench's errors
        except Exception as exc:
            # imported here: executor.core.errors needs pydantic, which --help does not
            from executor.core.errors import IsobenchError

            if isinstance(exc, OSError) and exc.errno in (28, 122):  # ENOSPC, EDQUOT
                where = f" ({exc.filename})" if exc.filename else ""
                click.echo(f"isobench: error: no space left on device{where}: free space "
                           f"there, then run again (the same --run-id, or --resume)", err=True)
                ctx.exit(20)  # infrastructure
            if not isinstance(exc, IsobenchError):
                raise
            click.echo(f"isobench: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=IsobenchGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="isobench")
def cli() -> None:
    """Benchmark AI coding agents on real performance commits, each in fresh containers.

    \b
    Start here:
      isobench doctor                     check Docker, GPUs, disk and images
      isobench run-commit <sha>           one commit end to end: agent, patch, benchmark
      isobench bench <sha> [--patch F]    benchmark base, human (and a patch) only
    The embedded demo needs no GPU, network or API key:
      isobench run-commit a0476e8c --state-dir ./state
    """


def main() -> None:
    cli(prog_name="isobench")


if __name__ == "__main__":
    sys.exit(main())
