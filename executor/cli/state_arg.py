"""STATE for the commands that read a state directory (status, report, export-predictions):
a positional argument, or `--state-dir` as every command that writes one takes it.

Imports only click: `status --help` must not wait for the report's modules (lazy.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

STATE_ENV = "ISOBENCH_STATE"
EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


def state_input(fn):
    """[STATE] and --state-dir; the command gets `state` (see `chosen_state`)."""
    fn = click.option("--state-dir", "state_dir", type=EXISTING_DIR,
                      help="The state directory (the same as STATE; default ./state or "
                           f"${STATE_ENV}).")(fn)
    return click.argument("state", type=EXISTING_DIR, required=False)(fn)


def chosen_state(state: Path | None, state_dir: Path | None) -> Path:
    """STATE or --state-dir (one place given twice must agree), else $ISOBENCH_STATE or
    ./state, which must exist."""
    if state is not None and state_dir is not None and state.resolve() != state_dir.resolve():
        raise click.UsageError(f"STATE {state} and --state-dir {state_dir} differ: give one")
    chosen = state or state_dir or Path(os.environ.get(STATE_ENV, "state"))
    if not chosen.is_dir():
        raise click.UsageError(f"no state directory {chosen} (give STATE or --state-dir)")
    return chosen
