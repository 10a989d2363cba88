"""Options from models (executor/cli/options.py), the exit code of each agent-phase ending, and
the backoff's hard cap."""

import random

import click
from click.testing import CliRunner
from pydantic import BaseModel, Field

from executor.cli.options import model_options
from executor.errors import signature
from executor.journal import EXIT_CODES, RunStatus, exit_code_for
from executor.policy import RetryPolicy
from executor.sandbox import Resources


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
