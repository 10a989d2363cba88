"""`isobench`: the command line. Each command group lives in its own module of this package.

Errors isobench raises on purpose (`IsobenchError`) become one line on stderr and their own
exit code (2 for bad input); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from executor import __version__
from executor.errors import IsobenchError

# Modules that each define `register(group)`; adding a command is one line here.
COMMAND_MODULES = (
    "executor.cli.run_commit",
    "executor.cli.bench",
    "executor.cli.images",
    "executor.cli.doctor",
    "executor.cli.batch",
    "executor.cli.report",
    "executor.cli.predictions",
)


class IsobenchGroup(click.Group):
    """Turns IsobenchError into a one-line message and its exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except IsobenchError as exc:
            click.echo(f"isobench: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=IsobenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(cli)


def main() -> None:
    cli(prog_name="isobench")


if __name__ == "__main__":
    sys.exit(main())
