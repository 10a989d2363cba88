"""`isobench doctor`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from executor.cli.common import console, default_state_dir, engine_option
from executor.runs.doctor import run_checks

STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


def register(group: click.Group) -> None:
    @group.command("doctor")
    @click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False),
                  default=default_state_dir, show_default="./state or $ISOBENCH_STATE")
    @engine_option
    def doctor_cmd(state_dir: Path) -> None:
        """Check the container engine (--engine), GPU runtime, disk and base image; say what to fix.

        Exits 1 when something blocks runs (a 'fail' row), else 0.
        """
        checks = run_checks(state_dir)
        table = Table(show_lines=False)
        for column in ("check", "", "finding", "what to do"):
            table.add_column(column, overflow="fold")
        for check in checks:
            table.add_row(check.name, f"[{STYLE[check.level]}]{check.level}[/]", check.finding,
                          check.action)
        console.print(table)
        sys.exit(1 if any(c.level == "fail" for c in checks) else 0)
