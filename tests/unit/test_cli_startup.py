"""`isobench --help` and `isobench status --help` start fast: they import none of the heavy
libraries (the lazy group loads only the command that runs), and the summaries the top help
lists without loading the commands are the commands' own."""

import json
import subprocess
import sys

import click

HEAVY = ("scipy", "matplotlib", "aiohttp", "numpy", "docker", "jinja2")

# Runs in a fresh interpreter: this test process has imported everything already.
PROBE = """
import json, sys
from executor.cli import cli
for args in (["--help"], ["status", "--help"]):
    cli.main(args, prog_name="isobench", standalone_mode=False)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def test_help_of_the_top_command_and_status_imports_no_heavy_library():
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=set(HEAVY))],
                         capture_output=True, text=True, check=True)
    assert "Commands:" in out.stdout and "Usage: isobench status" in out.stdout
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_listed_summaries_are_the_commands_own():
    from executor.cli import COMMANDS

    for name, lazy in COMMANDS.items():
        scratch = click.Group()
        __import__(lazy.module, fromlist=["register"]).register(scratch)
        command = scratch.commands[name]
        for limit in (45, 1000):  # truncated as in a narrow terminal, and whole
            assert click.Command(name, help=lazy.summary).get_short_help_str(limit) == \
                command.get_short_help_str(limit), name


def test_every_registered_command_is_declared():
    from executor.cli import COMMANDS

    for module in {lazy.module for lazy in COMMANDS.values()}:
        scratch = click.Group()
        __import__(module, fromlist=["register"]).register(scratch)
        declared = {name for name, lazy in COMMANDS.items() if lazy.module == module}
        assert set(scratch.commands) == declared, module


def test_a_mistyped_command_is_still_matched_against_every_command():
    from click.testing import CliRunner

    from executor.cli import cli

    out = CliRunner().invoke(cli, ["stauts"])
    assert out.exit_code == 2 and "Did you mean 'status'?" in out.output


# What `status` and `report` load to read a state: neither reaches a container engine nor runs
# statistics, so neither the engine's SDK (docker, requests) nor scipy belongs in them (they
# were a third of `report`'s start-up).
READERS_PROBE = """
import json, sys
import executor.cli.status, executor.cli.report
import executor.views.status, executor.views.status_view
import executor.views.report.build, executor.views.report.render
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def test_status_and_report_load_no_engine_sdk_and_no_scipy():
    heavy = {"docker", "requests", "urllib3", "scipy", "tenacity"}
    out = subprocess.run([sys.executable, "-c", READERS_PROBE.format(heavy=heavy)],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
