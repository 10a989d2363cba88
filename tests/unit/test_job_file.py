"""Job files (`--config job.toml`) for `run`, `run-commit` and `bench`, and their --help grouped
by concern (executor/cli/jobfile.py): in process, real files, no Docker."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from executor.cli import cli
from executor.cli.jobfile import HEADINGS, OPTIONS_META
from executor.records.state import OPTIONS_NAME, RunKey, StateLayout
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "docs" / "job.example.toml"


def command(name: str) -> click.Command:
    return cli.get_command(click.Context(cli), name)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def parse(name: str, *args) -> click.Context:
    """The command's context after parsing (defaults, job file, flags): the callback's input."""
    return command(name).make_context(name, [str(a) for a in args])


def job(tmp_path: Path, text: str, name: str = "job.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class Reached(Exception):
    """The test's stop at the callback's first step: what it was called with."""


def stop_at_resolve(monkeypatch, module: str) -> None:
    """Replace the command's resolve_source (its first step) with one that raises Reached
    carrying the callback's locals: the models the command got."""
    def resolve_source(sha, job_source):
        raise Reached(dict(inspect.currentframe().f_back.f_locals,
                           meta=dict(click.get_current_context().meta)))

    monkeypatch.setattr(f"executor.cli.{module}.resolve_source", resolve_source)


def callback_locals(result) -> dict:
    assert isinstance(result.exception, Reached), result.output
    return result.exception.args[0]


def test_the_example_job_file_reaches_run_commit_and_a_flag_beats_it(monkeypatch):
    stop_at_resolve(monkeypatch, "run_commit")
    got = callback_locals(invoke("run-commit", "a0476e8c", "--config", EXAMPLE,
                                 "--max-trials", "20"))
    assert got["agent"].agent == "replay" and got["agent"].budget_min == 30
    assert got["llm"].api_key_env == "OPENAI_API_KEY"
    assert got["gateway"].gateway and got["gateway"].gateway_rpm == 60
    assert got["vllm"].target_device == "cuda" and got["vllm"].probe is False
    assert got["bench"].max_trials == 20  # the flag, not the file's 10
    assert (got["bench"].warmup, got["bench"].seed) == (1, 7)
    assert str(got["resources"].gpus) == "none"
    assert got["resources"].limits.cpuset == "1" and got["resources"].limits.memory == "8g"
    assert got["retry"].max_attempts == 2
    assert got["state_dir"] == REPO_ROOT / "state"  # relative to the file's directory
    record = got["meta"][OPTIONS_META]
    assert record["config"] == str(EXAMPLE)
    assert record["config_sha256"] == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert record["values"]["benchmark"]["max-trials"] == 20
    assert record["values"]["resources"]["cpuset"] == "1"
    assert "benchmark.max-trials" in record["from_command_line"]
    assert "benchmark.max-trials" not in record["from_file"]
    assert {"benchmark.seed", "resources.cpuset", "images.probe"} <= set(record["from_file"])
    assert "OPENAI_API_KEY" not in json.dumps(record).replace('"OPENAI_API_KEY"', "")


def test_a_file_value_is_used_and_a_flag_beats_it(tmp_path):
    path = job(tmp_path, '[resources]\ncpuset = "1"\nmemory = "4g"\n'
                         '[benchmark]\nmax_trials = 10\naa = true\n[images]\nprobe = false\n')
    ctx = parse("bench", "a0476e8c", "--config", path, "--cpuset", "0-3")
    assert ctx.params["cpuset"] == "0-3" and ctx.params["memory"] == "4g"
    assert ctx.params["max_trials"] == 10 and ctx.params["aa"] is True
    assert ctx.params["probe"] is False
    assert parse("bench", "a0476e8c", "--config", path, "--probe").params["probe"] is True


def test_bench_gets_the_files_values_as_its_models(tmp_path, monkeypatch):
    stop_at_resolve(monkeypatch, "bench")
    path = job(tmp_path, '[benchmark]\ntrials = 4\nalpha = 0.1\n[resources]\ngpus = "0,1"\n')
    got = callback_locals(invoke("bench", "a0476e8c", "--config", path))
    assert got["options"].trials == 4 and got["options"].alpha == 0.1
    assert str(got["resources"].gpus) == "0,1"


@pytest.mark.parametrize("text, says", [
    ("[benchmark]\nmax-trails = 10\n", "[benchmark] max-trails: unknown option of "),
    ("[benchmark]\ncpuset = \"1\"\n",
     "[benchmark] cpuset: not a benchmark option; it goes in [resources]"),
    ("[benchmarks]\ntrials = 3\n", "[benchmarks]: not a table of "),
    ("trials = 3\n", "trials: options go in tables named for the headings of --help"),
    ("[benchmark]\nmax-trials = \"ten\"\n",
     '[benchmark] max-trials: expected an integer, got "ten"'),
    ("[benchmark]\nmax-trials = 1\n", "[benchmark] max-trials: 1 is not in the range x>=2"),
    ("[benchmark]\naa = \"yes\"\n", '[benchmark] aa: expected true or false, got "yes"'),
    ("[resources]\ncpus = [1, 2]\n", "[resources] cpus: expected one value, got [1, 2]"),
    ("[benchmark]\nmax-trials = 5\nmax_trials = 6\n", "[benchmark] max_trials: given twice"),
    ("[resources]\ngpus = \"some\"\n", "[resources] gpus: --gpus takes none, all, or ids"),
    ("[benchmark\n", "not TOML"),
])
def test_a_bad_job_file_is_one_line_naming_the_file_and_the_key(tmp_path, text, says):
    path = job(tmp_path, text)
    out = invoke("bench", "a0476e8c", "--config", path)
    assert out.exit_code == 2, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1, out.output
    assert lines[0].startswith(f"isobench: error: {path}: ") and says in lines[0], lines[0]


def test_a_missing_job_file_is_bad_input(tmp_path):
    out = invoke("run-commit", "a0476e8c", "--config", tmp_path / "nope.toml")
    assert out.exit_code == 2 and "nope.toml" in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_paths_in_the_file_are_relative_to_its_directory(tmp_path):
    path = job(tmp_path, '[benchmark]\ntask = "tasks/demo.toml"\nrepo = "../mirror"\n'
                         f'[record]\nstate-dir = "state"\n[images]\nwheel-dir = "{tmp_path}"\n',
               name="jobs/job.toml")
    ctx = parse("run-commit", "a0476e8c", "--config", path)
    assert ctx.params["task_file"] == tmp_path / "jobs" / "tasks" / "demo.toml"
    assert ctx.params["repo"] == str(tmp_path / "mirror")
    assert ctx.params["state_dir"] == tmp_path / "jobs" / "state"
    assert ctx.params["wheel_dir"] == tmp_path  # an absolute path stays
    for url in ("https://github.com/vllm-project/vllm.git", "git@github.com:org/repo.git"):
        path.write_text(f'[benchmark]\nrepo = "{url}"\n')
        assert parse("run-commit", "a0476e8c", "--config", path).params["repo"] == url
    # on the command line a relative path stays relative to the working directory
    assert parse("run-commit", "a0476e8c", "--config", path,
                 "--task", "t.toml").params["task_file"] == Path("t.toml")


def test_run_records_its_resolved_options_beside_its_policy(tmp_path):
    plan = tmp_path / "plan.json"
    assert invoke("plan", "--task-id", "demo", "--repo", "/srv/demo", "-o", plan,
                  "0000001").exit_code == 0
    path = job(tmp_path, '[agent]\nagent = "script"\n[batch]\nrun-item = '
                         '"tests.unit.batch_items:scripted"\nprogress = false\nworkers = 1\n'
                         '[record]\nstate-dir = "state"\nrun-id = "ci"\n')
    out = invoke("run", plan, "--config", path, "--warmup", "2")
    assert out.exit_code == 0, out.output
    key = RunKey(task="demo", agent="script", model="none", run_id="ci")
    record = json.loads((StateLayout(root=tmp_path / "state").run_dir(key)
                         / OPTIONS_NAME).read_text())
    assert record["config"] == str(path)
    assert record["config_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["values"]["batch"]["run-item"] == "tests.unit.batch_items:scripted"
    assert record["values"]["benchmark"]["warmup"] == 2
    assert record["values"]["record"]["state-dir"] == str(tmp_path / "state")
    assert record["from_command_line"] == ["benchmark.warmup"]
    assert "batch.workers" in record["from_file"]


def test_the_manifest_keeps_the_resolved_options_redacted():
    from executor.core.journal import Manifest

    options = {"values": {"model-and-gateway": {"base-url": "https://h/?k=sk-" + "a" * 24}}}
    manifest = Manifest(isobench_version="0", command_line=[], task={}, item_id="i",
                        commits={}, images={}, agent={}, command_options=options)
    assert manifest.command_options == options
    from executor.core.redact import Redactor

    assert "sk-" not in json.dumps(Redactor().mapping(options))


HELP_LINE = re.compile(r"^  (-\w, )?(--[\w-]+)")


def help_sections(name: str) -> dict[str, list[str]]:
    """heading -> the long flags listed under it, from the command's --help."""
    out = invoke(name, "--help")
    assert out.exit_code == 0, out.output
    sections: dict[str, list[str]] = {}
    heading = None
    for line in out.output.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            heading = line[:-1]
            sections[heading] = []
        elif heading and (match := HELP_LINE.match(line)):
            sections[heading].append(match.group(2))
    return sections


EXPECTED = {  # a few options of each heading, by command
    "run-commit": {"Agent": ["--agent", "--agent-source", "--verbose"],
                   "Model and gateway": ["--model", "--price-table", "--gateway-rpm"],
                   "Images": ["--target-device"], "Benchmark": ["--task", "--max-trials"],
                   "Resources": ["--gpus", "--cpuset"], "Batch": ["--max-attempts"],
                   "Record": ["--state-dir", "--run-id"]},
    "bench": {"Images": ["--wheel-dir"], "Benchmark": ["--patch", "--aa", "--predictions"],
              "Resources": ["--gpus"], "Record": ["--json", "--state-dir"]},
    "run": {"Agent": ["--agent"], "Model and gateway": ["--gateway"],
            "Images": ["--cpu-route"], "Benchmark": ["--aa-sample", "--predictions"],
            "Resources": ["--gpus", "--memory"],
            "Batch": ["--resume", "--backend", "--gpus-per-item", "--retryable-attempts"],
            "Record": ["--run-id"]},
}


@pytest.mark.parametrize("name", ["run-commit", "bench", "run"])
def test_help_lists_every_option_once_under_its_heading_in_order(name):
    sections = help_sections(name)
    headings = [h for h in sections if h in HEADINGS]
    assert headings == [h for h in HEADINGS if h in sections]  # in the order of HEADINGS
    assert sections["Options"] == ["--config", "--help"]
    listed = [flag for flags in sections.values() for flag in flags]
    assert len(listed) == len(set(listed))  # each option under exactly one heading
    options = [p for p in command(name).params if isinstance(p, click.Option)]
    assert sorted(listed) == sorted(
        [next(o for o in p.opts if o.startswith("--")) for p in options] + ["--help"])
    for heading, flags in EXPECTED[name].items():
        assert set(flags) <= set(sections[heading]), (heading, sections[heading])
    for param in options:  # every option but --config has a heading and so a table
        assert (getattr(param, "help_group", None) in HEADINGS) != (param.name == "config")


def test_the_help_text_of_each_option_is_its_own():
    for name in ("run-commit", "bench", "run"):
        cmd = command(name)
        ctx = click.Context(cmd, info_name=name)
        text = "".join(invoke(name, "--help").output.split())  # wrapped anywhere
        for param in cmd.params:
            if isinstance(param, click.Option):
                decls, help_text = param.get_help_record(ctx)
                assert "".join(f"{decls}{help_text}".split()) in text, (name, param.name)
