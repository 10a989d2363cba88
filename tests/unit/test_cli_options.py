"""Options from models (executor/cli/options.py), the exit code of each agent-phase ending, and
the backoff's hard cap."""

import random

import click
from click.testing import CliRunner
from pydantic import BaseModel, Field

from executor.cli.options import model_options
from executor.core.errors import signature
from executor.core.journal import EXIT_CODES, RunStatus, exit_code_for
from executor.core.policy import RetryPolicy
from executor.core.resources import Resources


class Knobs(BaseModel):
    level: int = Field(default=3, ge=1, le=9, json_schema_extra={"flag": "--level"},
                       description="How hard to try.")
    name: str | None = Field(default=None, json_schema_extra={"flag": "--name"},
                             description="What to call it.")
    loud: bool = Field(default=False, json_schema_extra={"flag": "--loud"},
                       description="Say it twice.")
    hidden: int = Field(default=7, description="No flag: not an option.")


@click.command()
@model_options(Knobs, "knobs")
@model_options(Resources, "resources")
def show(knobs: Knobs, resources: Resources) -> None:
    click.echo(f"{knobs.level} {knobs.name} {knobs.loud} {knobs.hidden} "
               f"{resources.gpus} {resources.limits.cpuset}")


def test_each_flagged_field_is_one_option_and_the_command_gets_one_model():
    out = CliRunner().invoke(show, ["--level", "5", "--loud", "--gpus", "0,1", "--cpuset", "2"])
    assert out.exit_code == 0, out.output
    assert out.output.strip() == "5 None True 7 0,1 2"
    assert CliRunner().invoke(show, []).output.strip() == "3 None False 7 none None"


def test_help_is_the_field_description_and_unflagged_fields_stay_hidden():
    text = CliRunner().invoke(show, ["--help"]).output
    assert "How hard to try." in text and "GPUs for the sandboxes" in text
    assert "--hidden" not in text


def test_a_value_the_model_refuses_is_exit_2_naming_the_flag():
    out = CliRunner().invoke(show, ["--level", "12"])
    assert out.exit_code == 2 and "--level" in out.output
    out = CliRunner().invoke(show, ["--gpus", "seven"])
    assert out.exit_code == 2 and "--gpus" in out.output


def test_provider_refusals_exit_16_other_agent_errors_keep_14():
    for name in ("rate_limit", "quota_exhausted", "provider_unavailable"):
        sig = signature((name, "retryable", ""), "429", "trajectory")
        assert exit_code_for(RunStatus.AGENT_ERROR, sig) == 16
    for name in ("must_patch_tool_output_missing", "tool_output_missing", "auth"):
        sig = signature((name, "permanent", ""), "400", "trajectory")
        assert exit_code_for(RunStatus.AGENT_ERROR, sig) == 14
    assert exit_code_for(RunStatus.AGENT_ERROR, None) == 14
    assert all(exit_code_for(s) == code for s, code in EXIT_CODES.items())
    assert 16 not in EXIT_CODES.values()  # distinct from every other ending


def test_retry_wait_max_is_a_hard_cap_jitter_included():
    policy = RetryPolicy(backoff_base_s=10, backoff_max_s=25, backoff_jitter=1.0)
    rng = random.Random(3)
    waits = [policy.backoff_s(n, rng) for n in (1, 2, 3, 4, 5) for _ in range(20)]
    assert max(waits) <= 25 and min(waits) >= 10
    assert any(w > 10 for w in waits[:20])  # jitter still spreads the short waits


# The real commands: every shared option group arrives as one model.

def _commands():
    from executor.cli import cli

    return {name: cli.get_command(None, name) for name in ("run-commit", "run", "bench")}


def test_run_and_run_commit_take_no_loose_shared_values():
    """The callbacks' parameters are the models (and the few command-specific values), not the
    flags' names: a new shared option is one field and one flag."""
    import inspect

    commands = _commands()
    loose = {"agent_name", "patch_file", "model", "base_url", "gpu_arch", "wheel_dir",
             "gateway_rpm", "task_file", "max_attempts", "retry_wait_max", "backend",
             "retryable_attempts"}
    for name in ("run-commit", "run"):
        params = set(inspect.signature(inspect.unwrap(commands[name].callback)).parameters)
        assert not params & loose, (name, params & loose)
        assert {"agent", "llm", "vllm", "gateway", "job_source", "resources",
                "bench"} <= params, (name, params)


def _invoke(*args: str):
    from executor.cli import cli

    return CliRunner().invoke(cli, list(args))


def test_a_price_table_that_does_not_parse_is_a_usage_error(tmp_path):
    table = tmp_path / "prices.toml"
    table.write_text("models = [not toml")
    out = _invoke("run-commit", "a0476e8c", "--agent", "trae", "--model", "m",
                  "--price-table", str(table), "--state-dir", str(tmp_path / "state"))
    assert out.exit_code == 2, out.output
    assert f"--price-table {table}: not a price table" in out.output
    assert not (tmp_path / "state").exists()


def test_model_bounds_hold_for_gateway_and_retry_flags(tmp_path):
    for args in (["--attempt-usd-budget", "0"], ["--gateway-retries", "-1"],
                 ["--max-attempts", "0"], ["--retry-wait-max", "-5"]):
        out = _invoke("run-commit", "a0476e8c", *args, "--state-dir", str(tmp_path / "s"))
        assert out.exit_code == 2 and args[0] in out.output, (args, out.output)
    out = _invoke("run", str(tmp_path / "missing.json"), "--backend", "kubernetes")
    assert out.exit_code == 2 and "--backend" in out.output


def test_run_commit_keeps_its_interactive_retry_defaults():
    from executor.core.policy import RetryPolicy as Policy

    text = _invoke("run-commit", "--help").output
    assert "--max-attempts" in text and "[default: 3; x>=1]" in " ".join(text.split())
    assert Policy().max_attempts == 6  # a batch's cap is the model's own default


def test_llm_settings_check_model_against_the_agent():
    import pytest

    from executor.parts.agents import LlmAgentOptions
    from executor.core.errors import UserInputError

    with pytest.raises(UserInputError, match="needs --model"):
        LlmAgentOptions().check_model("trae")
    with pytest.raises(UserInputError, match="uses no model"):
        LlmAgentOptions(model="m").check_model("replay")
    LlmAgentOptions(model="m").check_model("mini-swe-agent")
