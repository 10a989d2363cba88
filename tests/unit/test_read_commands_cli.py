"""The commands that read a state directory, as a new user meets them: `--state-dir` like every
other command, a report place that cannot be written is one line (exit 2), and report files
are readable by others as the umask says (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat

from click.testing import CliRunner

from executor.cli import cli
from tests.unit.isobench_state import write_isobench_state


def test_status_and_report_take_state_dir(tmp_path):
    state = write_isobench_state(tmp_path)
    by_flag = CliRunner().invoke(cli, ["status", "--state-dir", str(state), "--json"])
    by_arg = CliRunner().invoke(cli, ["status", str(state), "--json"])
    assert by_flag.exit_code == 0, by_flag.output
    assert by_flag.output.split('"runs"')[1] == by_arg.output.split('"runs"')[1]
    out = tmp_path / "report"
    made = CliRunner().invoke(cli, ["report", "--state-dir", str(state), "-o", str(out),
                                    "--no-human-diff"])
    assert made.exit_code == 0, made.output
    assert (out / "report.html").is_file()
    both = CliRunner().invoke(cli, ["status", str(state), "--state-dir", str(tmp_path)])
    assert both.exit_code == 2 and "differ" in both.output


def test_report_to_a_place_that_cannot_be_written_is_one_line(tmp_path):
    state = write_isobench_state(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(cli, ["report", str(state), "-o", str(blocker / "report"),
                                      "--no-human-diff"])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # not an OSError's traceback
    assert f"cannot write the report to {blocker / 'report'}" in result.output


def test_report_files_follow_the_umask(tmp_path):
    state = write_isobench_state(tmp_path)
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(cli, ["report", str(state), "-o", str(tmp_path / "r"),
                                          "--no-human-diff"])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    for name in ("report.html", "report.md", "report.json"):
        assert stat.S_IMODE((tmp_path / "r" / name).stat().st_mode) == 0o644, name
