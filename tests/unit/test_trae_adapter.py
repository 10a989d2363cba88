"""TRAE adapter, pure parts: settings, config file, command line, and outcomes read from
trajectories the real TRAE (pinned revision) wrote against the scripted server
(tests/fixtures/trae/regenerate.py)."""

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from executor.parts.agents.base import AgentEnding
from executor.parts.agents.trae import (DEFAULT_TOOLS, TRAE_REVISION, TraePaths, TraeSettings,
                                  render_trae_config, trae_command)
from executor.parts.agents.trae_trajectory import (MAX_STEPS_RESULT, load_trajectory,
                                             read_trajectory)
from executor.core.errors import ErrorClass

FIXTURES = Path(__file__).parents[1] / "fixtures" / "trae"
# TRAE's ModelConfig: the seven keys it requires; anything outside these (and its optional
# ones) makes TRAE refuse the file.
MODEL_REQUIRED = {"model", "model_provider", "temperature", "top_p", "top_k",
                  "parallel_tool_calls", "max_retries"}
MODEL_OPTIONAL = {"max_tokens", "supports_tool_calling", "candidate_count", "stop_sequences",
                  "max_completion_tokens"}

PATHS = TraePaths(cli="/opt/trae/bin/trae-cli", task_file="/run/task.txt",
                  working_dir="/workspace/repo", config_file="/run/trae_config.yaml",
                  trajectory_file="/run/trajectory.json", patch_path="/run/trae_patch.diff")


def config(**kwargs) -> dict:
    return yaml.safe_load(render_trae_config(TraeSettings(**{"model": "gpt-5", **kwargs})))


# ----------------------------------------------------------------------- settings and config


def test_default_config_has_everything_trae_requires_and_nothing_else():
    cfg = config(base_url="http://127.0.0.1:8321/v1", max_tokens=32768)
    assert set(cfg) == {"agents", "model_providers", "models"}
    agent = cfg["agents"]["trae_agent"]
    assert agent == {"model": "trae_agent_model", "max_steps": 200, "enable_lakeview": False,
                     "tools": list(DEFAULT_TOOLS)}
    model = cfg["models"][agent["model"]]
    assert MODEL_REQUIRED <= set(model) <= MODEL_REQUIRED | MODEL_OPTIONAL
    assert model["model"] == "gpt-5" and model["max_tokens"] == 32768
    provider = cfg["model_providers"][model["model_provider"]]
    assert provider["provider"] == "openai"
    assert provider["base_url"] == "http://127.0.0.1:8321/v1"


def test_config_never_holds_a_key_only_a_placeholder_naming_the_env_variable():
    settings = TraeSettings(model="gpt-5")
    text = render_trae_config(settings)
    api_key = yaml.safe_load(text)["model_providers"]["openai"]["api_key"]
    assert api_key and "OPENAI_API_KEY" in api_key  # TRAE requires the field; env wins over it
    assert settings.api_key_env == "OPENAI_API_KEY"
    assert TraeSettings(model="claude", provider="anthropic").api_key_env == "ANTHROPIC_API_KEY"


def test_lakeview_only_when_enabled():
    assert "lakeview" not in config()
    cfg = config(lakeview=True, lakeview_model="gpt-5-mini")
    assert cfg["agents"]["trae_agent"]["enable_lakeview"] is True
    assert cfg["models"][cfg["lakeview"]["model"]]["model"] == "gpt-5-mini"


def test_optional_fields_are_left_out_when_unset():
    cfg = config()
    assert "max_tokens" not in cfg["models"]["trae_agent_model"]
    assert "base_url" not in cfg["model_providers"]["openai"]
    assert cfg["model_providers"]["openai"].keys() == {"api_key", "provider"}


@pytest.mark.parametrize("model", ["no", "1e3", "null", "a: b # c", 'quo"te\\back', "naïve-模型"])
def test_awkward_strings_read_back_exactly(model):
    assert config(model=model)["models"]["trae_agent_model"]["model"] == model


def test_settings_reject_unknown_tools_and_a_missing_task_done():
    with pytest.raises(ValidationError, match="unknown TRAE tools"):
        TraeSettings(model="m", tools=["bash", "task_done", "rm_rf"])
    with pytest.raises(ValidationError, match="task_done"):
        TraeSettings(model="m", tools=["bash"])
    with pytest.raises(ValidationError):
        TraeSettings(model="m", api_key="sk-nope")  # no field may carry a key


def test_settings_pin_a_revision_and_record_source():
    settings = TraeSettings(model="m")
    assert settings.revision == TRAE_REVISION and len(TRAE_REVISION) == 40
    assert TraeSettings(model="m", source="/srv/mirrors/trae-agent").source.startswith("/srv")


def test_command_line():
    argv = trae_command(TraeSettings(model="gpt-5", max_steps=75), PATHS)
    assert argv[:2] == ["/opt/trae/bin/trae-cli", "run"]
    flags = dict(zip(argv[2::2], argv[3::2]))
    assert flags == {"--file": "/run/task.txt", "--working-dir": "/workspace/repo",
                     "--config-file": "/run/trae_config.yaml",
                     "--trajectory-file": "/run/trajectory.json",
                     "--patch-path": "/run/trae_patch.diff", "--max-steps": "75",
                     "--console-type": "simple"}
    assert "--must-patch" not in argv
    assert not any("key" in a.lower() for a in argv)  # keys never on a command line


def test_must_patch_only_when_asked():
    assert trae_command(TraeSettings(model="m", must_patch=True), PATHS)[-1] == "--must-patch"


# ----------------------------------------------------------------------- trajectories


def test_success_trajectory():
    out = load_trajectory(FIXTURES / "success.json")
    assert out.ending == AgentEnding.FINISHED and out.success and out.finalized
    assert out.signature is None and out.last_error is None
    assert out.steps == 3
    usage = out.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens,
            usage.reasoning_tokens, usage.cache_creation_input_tokens, usage.llm_calls) == \
        (10500, 303, 3072, 192, 0, 3)
    assert usage.cost_usd is None  # pricing is applied by the caller


def test_max_steps_trajectory():
    out = load_trajectory(FIXTURES / "max_steps.json")
    assert out.ending == AgentEnding.MAX_STEPS and not out.success
    assert out.final_result == MAX_STEPS_RESULT
    assert out.signature.name == "max_steps" and out.steps == 3


def test_must_patch_death_is_named_by_its_real_cause():
    data = json.loads((FIXTURES / "must_patch_death.json").read_text())
    assert data["agent_steps"][-1]["state"] == "completed"  # the failing step looks fine
    out = read_trajectory(data)
    assert out.ending == AgentEnding.ERROR and not out.success
    assert out.signature.name == "must_patch_tool_output_missing"
    assert out.signature.error_class == ErrorClass.PERMANENT
    assert "No tool output found for function call call_3" in out.signature.evidence
    assert "ERROR! Your Patch is empty" in out.signature.evidence
    assert out.must_patch_nudges == 1
    assert out.usage.llm_calls == 3  # the refused request left no interaction


def test_text_between_call_and_output_is_accepted():
    # TRAE files a turn's text after its calls; the real API (and our server) only require an
    # output for every call somewhere later in the input.
    out = load_trajectory(FIXTURES / "text_then_call.json")
    assert out.ending == AgentEnding.FINISHED and out.signature is None


def test_unpaired_call_without_the_nudge_is_plain_tool_output_missing():
    data = json.loads((FIXTURES / "must_patch_death.json").read_text())
    for step in data["agent_steps"]:  # as if something other than must-patch dropped the output
        step["llm_messages"] = [m for m in step.get("llm_messages") or []
                                if "Your Patch is empty" not in str(m.get("content"))]
    out = read_trajectory(data)
    assert out.signature.name == "tool_output_missing"
    assert out.must_patch_nudges == 0


@pytest.mark.parametrize("fixture,name,retry", [
    ("rate_limit_death.json", "rate_limit", True),
    ("quota_death.json", "quota_exhausted", False),
    ("auth_death.json", "auth", False),
])
def test_provider_deaths(fixture, name, retry):
    out = load_trajectory(FIXTURES / fixture)
    assert out.ending == AgentEnding.ERROR and not out.success and out.finalized
    assert out.signature.name == name
    assert out.signature.retry_may_help is retry
    assert out.last_error and out.signature.evidence in out.last_error


def test_nudge_without_a_failure_is_counted_but_not_a_death():
    data = json.loads((FIXTURES / "must_patch_death.json").read_text())
    data["agent_steps"] = data["agent_steps"][:-1]  # as if the next request had been accepted
    data.update(success=True, final_result="Done.")
    out = read_trajectory(data)
    assert out.ending == AgentEnding.FINISHED and out.must_patch_nudges == 1


def test_unfinalized_trajectory_is_never_success():
    data = json.loads((FIXTURES / "success.json").read_text())
    data.update(end_time="", success=False, final_result=None)
    out = read_trajectory(json.dumps(data))
    assert out.ending == AgentEnding.ERROR and not out.finalized
    assert out.signature.name == "unclassified" and "did not finalize" in out.signature.evidence


def test_truncated_file_is_read_as_an_error_not_a_crash():
    text = (FIXTURES / "success.json").read_text()
    out = read_trajectory(text[: len(text) // 2])
    assert out.ending == AgentEnding.ERROR and out.signature.name == "unclassified"


def test_outer_failure_in_final_result_is_classified():
    data = {"agent_steps": [], "llm_interactions": [], "end_time": "2026-01-01T00:00:00",
            "success": False, "final_result": "Agent execution failed: Request timed out."}
    assert read_trajectory(data).signature.name == "provider_unavailable"


def test_exit_code_is_not_evidence():
    # Every fixture above came from a TRAE process that exited 0.
    endings = {load_trajectory(p).ending for p in FIXTURES.glob("*.json")}
    assert endings == {AgentEnding.FINISHED, AgentEnding.MAX_STEPS, AgentEnding.ERROR}
