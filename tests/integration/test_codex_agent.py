"""Codex CLI end to end: the real `@openai/codex` (npm, pinned) in its bundle, in a sandbox on
the demo, through the controller's gateway to the scripted server speaking the Responses API
(streamed), via `isobench run-commit` as a user runs it. One bundle build serves every case
(content-addressed tag); `--skip-bench` keeps each case to the agent phase.

Scenarios: a real edit ends `finished` with the gateway's usage; a provider refusing for good
(insufficient_quota) is exit 16; a spent token budget ends `budget_exhausted` with the patch
kept; the key's text, base64 and hex forms are nowhere in the sandbox, the state dir or what
reaches the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from executor.parts import demo
from executor.testing.llm_script import LlmScript, TurnUsage, call, fail, reply
from tests.conftest import rid, run_cli
from tests.integration.agent_evidence import WatchingLLM, attempts, bundle_image_shows, holds
from tests.integration.agent_evidence import scenario_row as agent_scenario_row

pytestmark = [pytest.mark.docker]

KEY = "sk-isobench-codex-5d7e2a91c4b8f360"
KEY_ENV = "ISOBENCH_CODEX_TEST_KEY"
MODEL = "scripted-model"
REPO = "/workspace/repo"
ALLOCATOR = "minivllm/block_allocator.py"
EDIT = reply("Editing.", call("exec_command", cmd=f"printf '\\n# codex was here\\n' >> {ALLOCATOR}"),
             usage=TurnUsage(input_tokens=1200, output_tokens=40))
DONE = reply("Done: the allocator is edited.", usage=TurnUsage(input_tokens=1300,
                                                               output_tokens=12))
# Codex strips *KEY*/*TOKEN* variables from its commands' environment, so the command reads
# the environment of the codex process itself, as any process in the sandbox could.
SHOW_ENV = reply(None, call("exec_command", cmd=(
    "env; for p in /proc/[0-9]*; do case \"$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\" in "
    "*'codex exec'*) tr '\\0' '\\n' < $p/environ;; esac; done")))


def holds_key(data: bytes) -> bool:
    return holds(KEY, data)


def run_codex(tmp_path: Path, name: str, turns: list, *extra: str):
    """Serve `turns` (the key required), run Codex on the demo; (process, item dir, server)."""
    run_id = rid(name)
    state = tmp_path / "state"
    llm = WatchingLLM(LlmScript(turns=turns, api_key=SecretStr(KEY), models=[MODEL]), run_id)
    with llm:
        out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--agent", "codex", "--model", MODEL,
                      "--base-url", llm.base_url, "--api-key-env", KEY_ENV, "--state-dir",
                      str(state), "--run-id", run_id, "--skip-bench", "--retry-wait-max", "0",
                      *extra, env={KEY_ENV: KEY})
    item = state / "runs" / "demo" / "codex" / MODEL / run_id / "demo-0000"
    return out, item, llm


def scenario_row(name: str, out, item: Path) -> str:
    return agent_scenario_row("codex", name, out, item)


@pytest.fixture(scope="module")
def edited(docker_engine, base_image, tmp_path_factory):
    """One recorded edit that the success, replay and export scenarios all read."""
    tmp_path = tmp_path_factory.mktemp("codex-edited")
    return run_codex(tmp_path, "codex-edit", [EDIT, DONE])


def test_codex_edits_the_repo_and_finishes_with_the_gateways_usage(edited):
    out, item, llm = edited
    print(scenario_row("real edit", out, item))
    assert out.returncode == 0, out.stderr[-3000:]
    [attempt] = attempts(item)
    assert attempt["status"] == "success" and attempt["agent_outcome"] == "finished"
    assert "+# codex was here" in (item / "model_patch.diff").read_text()
    # Usage is the provider's own (the scripted counts), read by the gateway from the stream.
    assert attempt["usage"]["input_tokens"] == 2500 and attempt["usage"]["output_tokens"] == 52
    assert attempt["usage"]["llm_calls"] == 2 and attempt["model_traffic"]["calls"] == 2
    requests = [r for r in llm.requests if r.path == "/v1/responses"]
    assert len(requests) == 2 and all(r.body["stream"] is True for r in requests)
    # Stateless: the second call re-sends the first one's function call with its output.
    kinds = [i.get("type") for i in requests[1].body["input"]]
    assert "function_call" in kinds and "function_call_output" in kinds
    events = (item / "attempt-1" / "codex_events.jsonl").read_text()
    assert '"type":"turn.completed"' in events and '"command_execution"' in events
    assert (item / "attempt-1" / "codex_session.jsonl").stat().st_size > 0
    manifest = json.loads((item / "manifest.json").read_text())
    pins = manifest["agent"]["config"]["npm"]
    assert pins[0]["name"] == "@openai/codex" and pins[0]["integrity"].startswith("sha512-")
    assert "0.171.0" in manifest["agent"]["config"]["bundle"]["reports"]


def test_a_provider_refusing_for_good_is_exit_16_and_not_retried(docker_engine, base_image,
                                                                 tmp_path):
    out, item, llm = run_codex(tmp_path, "codex-quota", [fail("insufficient_quota")])
    print(scenario_row("provider refuses (quota)", out, item))
    assert out.returncode == 16, out.stderr[-3000:]
    [attempt] = attempts(item)  # quota is permanent: one attempt
    assert attempt["signature"]["name"] == "quota_exhausted"
    assert attempt["signature"]["source"] == "codex_events"  # named from Codex's own record
    assert attempt["model_traffic"]["upstream_429"] == 1 and llm.turns_served == 1


def test_a_spent_token_budget_ends_budget_exhausted_and_keeps_the_patch(docker_engine,
                                                                       base_image, tmp_path):
    out, item, llm = run_codex(tmp_path, "codex-budget", [EDIT, DONE],
                               "--attempt-token-budget", "100")
    print(scenario_row("token budget spent", out, item))
    assert out.returncode == 14, out.stderr[-3000:]
    [attempt] = attempts(item)
    assert attempt["signature"]["name"] == "budget_exhausted"
    assert attempt["model_traffic"]["budget_exhausted"] is True and llm.turns_served == 1
    assert "+# codex was here" in (item / "model_patch.diff").read_text()  # work so far kept
    events = (item / "attempt-1" / "codex_events.jsonl").read_text()
    assert '"type":"turn.failed"' in events and "isobench budget exhausted" in events


def test_the_key_is_nowhere_in_the_sandbox_the_state_or_what_reaches_the_model(
        docker_engine, base_image, tmp_path):
    out, item, llm = run_codex(tmp_path, "codex-keys", [SHOW_ENV, EDIT, DONE], "-v")
    print(scenario_row("key search", out, item))
    assert out.returncode == 0, out.stderr[-3000:]
    # The sandbox: its configuration while the agent ran, and the agent's own environment
    # (the commands' output went back to the model in the next request).
    assert llm.inspected.startswith("[") and '"Env"' in llm.inspected
    assert not holds_key(llm.inspected.encode())
    answered = next(raw for raw in llm.raw if b"function_call_output" in raw)
    assert b"OPENAI_API_KEY=isobench-attempt-" in answered  # codex holds the attempt token
    assert KEY_ENV.encode() not in answered
    # What reached the model: every request's headers (but the Authorization the provider
    # needs) and body, as they arrived.
    assert llm.raw and not [raw for raw in llm.raw if holds_key(raw)]
    # The state dir, every file; the console.
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert len(files) > 5 and not [str(p) for p in files if holds_key(p.read_bytes())]
    assert not holds_key((out.stdout + out.stderr).encode())
    # The bundle image and its history.
    assert not holds_key(bundle_image_shows(item).encode())


def test_a_recorded_codex_attempt_replays_offline_to_the_same_patch(edited, tmp_path):
    """Codex mints new session ids, item ids and timings every run; the gateway's replay key
    for Responses sets those aside, so the recorded answers serve the rerun with no provider
    and no key."""
    import hashlib

    out, item, _ = edited
    assert out.returncode == 0, out.stderr[-3000:]
    record = item / "attempt-1" / "model_calls.jsonl"
    run_id = rid("codex-replayed")
    out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--agent", "codex", "--model", MODEL,
                  "--api-key-env", KEY_ENV, "--gateway-replay", str(record), "--state-dir",
                  str(tmp_path / "state"), "--run-id", run_id, "--skip-bench",
                  "--retry-wait-max", "0", env={KEY_ENV: ""})
    again = tmp_path / "state" / "runs" / "demo" / "codex" / MODEL / run_id / "demo-0000"
    print(scenario_row("replayed offline", out, again))
    assert out.returncode == 0, out.stderr[-3000:]
    digest = {hashlib.sha256((d / "model_patch.diff").read_bytes()).hexdigest()
              for d in (item, again)}
    assert len(digest) == 1 and (again / "model_patch.diff").stat().st_size > 0
    [attempt] = attempts(again)
    assert attempt["model_traffic"]["calls"] == 2 and attempt["model_traffic"]["answered_ok"] == 2


def test_an_exported_run_reruns_its_agent_offline_for_someone_without_the_key(edited,
                                                                             tmp_path):
    """`isobench export`, then `isobench rerun --agent` with no provider and no key: Codex is
    built as the recorded command built it and answered from the bundle's recorded traffic;
    `isobench compare` finds the same patch."""
    out, item, _ = edited
    assert out.returncode == 0, out.stderr[-3000:]
    bundle = tmp_path / "run.bundle"
    assert run_cli("export", str(item.parent), "-o", str(bundle)).returncode == 0
    assert (bundle / "items" / "demo-0000" / "model_calls.jsonl").is_file()
    rerun_state = tmp_path / "rerun-state"
    out = run_cli("rerun", str(bundle), "--agent", "--state-dir", str(rerun_state), "--run-id",
                  "again", env={KEY_ENV: "", "OPENAI_API_KEY": ""})
    assert out.returncode == 0, out.stderr[-3000:]
    again = rerun_state / "runs" / "demo" / "codex" / MODEL / "again" / "demo-0000"
    print(scenario_row("rerun --agent of the export", out, again))
    [attempt] = attempts(again)
    # no provider is up (the recorded server is gone) and no key is set: the record answered
    assert attempt["status"] == "success" and attempt["model_traffic"]["answered_ok"] == 2
    assert json.loads((again / "journal.json").read_text())["rerun_of"]
    compared = run_cli("compare", str(item.parent), str(again.parent), "--json")
    [row] = json.loads(compared.stdout)["items"]
    assert row["same_patch"] is True, compared.stdout
