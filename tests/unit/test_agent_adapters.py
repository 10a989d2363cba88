"""LLM agent adapters without an engine: mini-swe-agent's config, command and outcomes (from
trajectories the real mini 2.4.6 wrote against the scripted server), endpoints and keys,
bundle recipes, agent sources, and the controller's retry policy."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from executor.parts.agents import LlmAgentOptions, make_agent
from executor.parts.agents.base import AgentEnding, AgentTask
from executor.parts.agents.bundle import BundleRecipe
from executor.parts.agents.llm_common import Endpoint, is_loopback_url
from executor.parts.agents.mini_swe import (CONFIG_PATH, MiniSweSettings, install_command,
                                      mini_command, mini_config, mini_env)
from executor.parts.agents.mini_swe_trajectory import read_mini_trajectory
from executor.parts.agents.source import export_source
from executor.runs.attempts import RetryPolicy, run_commit_with_retries
from executor.core.errors import ErrorClass, ErrorSignature, UserInputError
from executor.core.journal import RunStatus
from executor.runs.pipeline import CommitOutcome
from executor.core.yaml_emit import dump_yaml

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mini_swe"
TASK = AgentTask(item_id="i", repo_dir="/workspace/repo", scratch_dir="/workspace/repo/.s",
                 prompt="Make it faster.\nPlease.", budget_s=3600)


def settings(**kwargs) -> MiniSweSettings:
    return MiniSweSettings(endpoint=Endpoint(model="gpt-5", base_url="http://127.0.0.1:9/v1"),
                           **kwargs)


# ----------------------------------------------------------------------- mini-swe-agent


def test_mini_config_switches_off_inner_retries_and_caps():
    config = yaml.safe_load(dump_yaml(mini_config(settings(step_limit=40), TASK)))
    assert config["model"]["model_kwargs"] == {"drop_params": True, "max_retries": 0,
                                               "api_base": "http://127.0.0.1:9/v1"}
    agent = config["agent"]
    assert agent["step_limit"] == 40 and agent["cost_limit"] == 0
    assert 0 < agent["wall_time_limit_seconds"] < TASK.budget_s
    assert config["environment"] == {"cwd": "/workspace/repo", "timeout": 600}
    env = mini_env(settings())
    assert env["MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT"] == "1"
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True" and env["MSWEA_CONFIGURED"] == "true"
    assert not any("KEY" in name for name in env)


def test_mini_command_line_has_no_key_and_reads_the_task_from_a_file():
    command = mini_command(settings(), "/opt/isobench/agents/mini-swe-agent-abc")
    assert command.startswith("/opt/isobench/agents/mini-swe-agent-abc/venv/bin/mini --yolo")
    assert "-m openai/gpt-5" in command and f"-c {CONFIG_PATH}" in command
    assert '-t "$(cat ' in command and "KEY" not in command.upper().replace("API_BASE", "")
    assert settings().key_variable == "OPENAI_API_KEY"
    anthropic = MiniSweSettings(endpoint=Endpoint(model="anthropic/claude"))
    assert anthropic.litellm_model == "anthropic/claude"
    assert anthropic.key_variable == "ANTHROPIC_API_KEY"
    assert "mini-swe-agent==2.4.6" in install_command("2.4.6")


@pytest.mark.parametrize("fixture,ending,name,retry", [
    ("submitted", AgentEnding.FINISHED, None, None),
    ("limits_exceeded", AgentEnding.MAX_STEPS, "max_steps", False),
    ("rate_limit", AgentEnding.ERROR, "rate_limit", True),
    ("auth", AgentEnding.ERROR, "auth", False),
])
def test_mini_outcomes_from_real_trajectories(fixture, ending, name, retry):
    out = read_mini_trajectory((FIXTURES / f"{fixture}.json").read_text())
    assert out.ending == ending
    if name is None:
        assert out.signature is None
    else:
        assert out.signature.name == name and out.signature.retry_may_help is retry


def test_mini_usage_is_summed_over_responses():
    out = read_mini_trajectory((FIXTURES / "submitted.json").read_bytes())
    u = out.usage
    assert (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens,
            u.llm_calls) == (4500, 50, 512, 8, 2)
    assert out.steps == 2 and u.cost_usd is None


def test_mini_unreadable_or_unfinished_trajectory_is_never_success():
    text = (FIXTURES / "submitted.json").read_text()
    assert read_mini_trajectory(text[:100]).signature.name == "unclassified"
    data = json.loads(text)
    data["info"]["exit_status"] = ""
    out = read_mini_trajectory(data)
    assert out.ending == AgentEnding.ERROR and "no exit_status" in out.signature.evidence
    data["info"]["exit_status"] = "TimeExceeded"
    assert read_mini_trajectory(data).ending == AgentEnding.TIMEOUT


# ----------------------------------------------------------------------- endpoints and keys


@pytest.mark.parametrize("url,loopback", [
    ("http://127.0.0.1:8321/v1", True), ("http://localhost:1/v1", True),
    ("http://[::1]:8/v1", True), ("https://api.openai.com/v1", False),
    ("http://10.1.2.3/v1", False),
])
def test_loopback_endpoints_get_host_networking(url, loopback):
    assert is_loopback_url(url) is loopback
    assert Endpoint(model="m", base_url=url).sandbox_network() == ("host" if loopback else None)


def test_key_comes_from_the_named_variable_only():
    endpoint = Endpoint(model="m", api_key_env="MY_KEY")
    assert endpoint.api_key({"MY_KEY": "sk-abc"}) == "sk-abc"
    with pytest.raises(UserInputError, match=r"\$MY_KEY"):
        endpoint.api_key({"OPENAI_API_KEY": "sk-other"})


def test_make_agent_needs_a_model_and_keeps_the_key_out_of_info(monkeypatch):
    monkeypatch.setenv("ISO_KEY", "sk-isobench-test-unit-000000000000")
    with pytest.raises(UserInputError, match="--model"):
        make_agent("mini-swe-agent", llm=LlmAgentOptions(api_key_env="ISO_KEY"))
    for name in ("mini-swe-agent", "trae"):
        agent = make_agent(name, llm=LlmAgentOptions(model="gpt-5", api_key_env="ISO_KEY"))
        assert "sk-isobench-test-unit" not in json.dumps(agent.info().model_dump(mode="json"))
        assert list(agent.secret_env().values()) == ["sk-isobench-test-unit-000000000000"]


# ----------------------------------------------------------------------- bundles and sources


def test_bundle_recipe_names_image_and_path_by_content():
    recipe = BundleRecipe(agent="mini-swe-agent", version="2.4.6", install_command="x",
                          base_image_id="sha256:1")
    other = recipe.model_copy(update={"base_image_id": "sha256:2"})
    assert recipe.tag.startswith("isobench/agent-mini-swe-agent:2.4.6-")
    assert recipe.tag != other.tag and recipe.bundle_dir != other.bundle_dir
    assert recipe.bundle_dir == f"/opt/isobench/agents/{recipe.key}"
    assert recipe.tag == BundleRecipe.model_validate(recipe.model_dump()).tag


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_source_from_a_checkout_is_the_committed_tree_at_the_revision(tmp_path):
    repo = tmp_path / "agent"
    repo.mkdir()
    (repo / "a.py").write_text("v1\n")
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "one")
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "a.py").write_text("v2, not committed\n")  # local edits never enter a bundle
    tree = export_source(str(repo), first[:7], tmp_path / "out", tmp_path / "cache")
    assert tree.revision == first and (tmp_path / "out" / "a.py").read_text() == "v1\n"
    assert tree.digest == _git(repo, "rev-parse", "HEAD^{tree}")
    url = export_source(f"file://{repo}", None, tmp_path / "out2", tmp_path / "cache")
    assert url.revision == first and url.digest == tree.digest
    with pytest.raises(UserInputError, match="not in"):
        export_source(str(repo), "deadbeef", tmp_path / "out3", tmp_path / "cache")


def test_source_from_a_plain_directory_is_hashed(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x\n")
    tree = export_source(str(tmp_path / "src"), None, tmp_path / "out", tmp_path / "c")
    assert tree.revision.startswith("tree-") and (tmp_path / "out" / "a.py").exists()
    with pytest.raises(UserInputError, match="not a git repository"):
        export_source(str(tmp_path / "src"), "v1", tmp_path / "o2", tmp_path / "c")


# ----------------------------------------------------------------------- retries


def outcome(status: RunStatus, name: str | None = None,
            cls: ErrorClass = ErrorClass.PERMANENT) -> CommitOutcome:
    sig = ErrorSignature(name=name, error_class=cls, evidence=name, source="t") if name else None
    return CommitOutcome(status=status, exit_code=0, item_dir=Path("/x"), attempt=1,
                         signature=sig)


def run_sequence(outcomes, max_attempts=3):
    calls, waits = [], []

    def fake_run(job, agent, options, log):
        calls.append(1)
        return outcomes[len(calls) - 1]

    result = run_commit_with_retries(None, None, None, RetryPolicy(max_attempts=max_attempts),
                                     log=lambda _: None, sleep=waits.append, run=fake_run)
    return result, len(calls), waits


def test_retryable_and_infra_failures_are_retried_then_stop_at_success():
    seq = [outcome(RunStatus.AGENT_ERROR, "rate_limit", ErrorClass.RETRYABLE),
           outcome(RunStatus.INFRA_ERROR, "docker_unreachable", ErrorClass.INFRA),
           outcome(RunStatus.SUCCESS)]
    result, calls, waits = run_sequence(seq)
    assert result.status == RunStatus.SUCCESS and calls == 3 and len(waits) == 2
    policy = RetryPolicy()
    assert all(0 < w <= policy.backoff_max_s * (1 + policy.backoff_jitter) for w in waits)


@pytest.mark.parametrize("failure", [
    outcome(RunStatus.AGENT_ERROR, "auth"), outcome(RunStatus.AGENT_ERROR, "tool_output_missing"),
    outcome(RunStatus.NO_PATCH), outcome(RunStatus.MAX_STEPS, "max_steps"),
])
def test_permanent_failures_are_never_retried(failure):
    result, calls, waits = run_sequence([failure, outcome(RunStatus.SUCCESS)])
    assert result is failure and calls == 1 and waits == []


def test_attempts_are_bounded_and_the_last_outcome_returned():
    rate = outcome(RunStatus.AGENT_ERROR, "rate_limit", ErrorClass.RETRYABLE)
    result, calls, _ = run_sequence([rate] * 5, max_attempts=2)
    assert calls == 2 and result is rate
