"""The gateway in the real pipeline (real Docker, the script agent calling the scripted
OpenAI-compatible server through `isobench run-commit` / `isobench run`): the key stays out of
the sandbox and the state dir, a batch paces itself under a provider's rate limit, the agent's
own retries are counted, budgets stop an attempt for good, and a record replays offline."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from executor.parts import demo
from executor.core.journal import load_journal
from executor.engine.sandbox import LABEL_MANAGED, LABEL_RUN
from executor.records.state import MODEL_CALLS_NAME, RunKey, StateLayout
from executor.testing.llm_script import LlmScript, RateWindow, fail
from executor.testing.scripted_llm import ScriptedLLM
from tests.conftest import run_cli
from tests.integration.gateway_agent import APPLY, DONE, gateway_agent_script

pytestmark = [pytest.mark.docker]

KEY = "sk-isobench-gateway-9c41d2e8b7a6f530"
KEY_ENV = "ISOBENCH_GATEWAY_TEST_KEY"


def encodings(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), raw.hex().encode(), raw.hex().upper().encode(),
            base64.b64encode(raw).rstrip(b"=")]


def files_with_key(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file()
            and any(e in p.read_bytes() for e in encodings(KEY))]


class InspectingLLM(ScriptedLLM):
    """Runs `docker inspect` on the run's live sandboxes while it answers the first model
    call (the controller's key check, GET /models, comes before any sandbox)."""

    def __init__(self, script: LlmScript, run_id: str):
        super().__init__(script)
        self.run_id, self.inspected = run_id, ""

    def handle(self, method, *args, **kwargs):
        if method == "POST" and not self.inspected:
            ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label={LABEL_MANAGED}",
                                  "--filter", f"label={LABEL_RUN}={self.run_id}"],
                                 capture_output=True, text=True, check=True).stdout.split()
            self.inspected = subprocess.run(["docker", "inspect", *ids], capture_output=True,
                                            text=True).stdout if ids else "(no sandbox)"
        return super().handle(method, *args, **kwargs)


def run_commit(tmp_path: Path, run_id: str, llm: ScriptedLLM | None, *extra: str,
               env: dict | None = None, **agent):
    script = gateway_agent_script(tmp_path / "agent.sh", **agent)
    base = ["--base-url", llm.base_url, "--api-key-env", KEY_ENV] if llm else []
    out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--agent", "script", "--agent-script",
                  str(script), *base, "--state-dir", str(tmp_path / "state"), "--run-id",
                  run_id, "--skip-bench", "--retry-wait-max", "0", *extra,
                  env={KEY_ENV: KEY, **(env or {})})
    item = tmp_path / "state" / "runs" / "demo" / "script" / "none" / run_id / "demo-0000"
    return out, item


def attempts(item: Path) -> list[dict]:
    return json.loads((item / "journal.json").read_text())["attempts"]


def test_the_key_stays_outside_the_sandbox_and_the_state_dir(docker_engine, base_image,
                                                             tmp_path):
    script = LlmScript(turns=[APPLY, DONE], api_key=SecretStr(KEY))
    with InspectingLLM(script, "keys") as llm:
        out, item = run_commit(tmp_path, "keys", llm, "-v", show_env=True)
        upstream = [(r.path, r.headers["authorization"]) for r in llm.requests]
        inspected = llm.inspected
    assert out.returncode == 0, out.stderr[-3000:]
    # The key check, then the agent's two calls, all with the key (the server masks it).
    assert upstream == [("/v1/models", "[REDACTED]")] + [("/v1/chat/completions",
                                                          "[REDACTED]")] * 2
    assert inspected.startswith("[") and '"Env"' in inspected  # the live agent sandbox
    assert not [e for e in encodings(KEY) if e.decode() in inspected]
    shown = (item / "attempt-1" / "agent_stdout.txt").read_text()
    held = shown.split("key reversed: ", 1)[1].split("\n", 1)[0][::-1]
    assert held.startswith("isobench-attempt-")  # the attempt token, not the key
    environ = bytes.fromhex(shown.split("environ reversed: ", 1)[1].split("\n", 1)[0])[::-1]
    assert b"OPENAI_API_KEY=isobench-attempt-" in environ  # the agent process's environment
    assert not [e for e in encodings(KEY) if e in environ] and KEY_ENV.encode() not in environ
    env_lines = shown.split("--- env:")[1]
    assert "OPENAI_API_KEY=[REDACTED]" in env_lines  # the token is masked in logs too
    assert not [e for e in encodings(KEY) + encodings(KEY[::-1]) if e.decode() in shown]
    assert files_with_key(tmp_path / "state") == []
    assert KEY not in out.stdout + out.stderr
    [attempt] = attempts(item)
    assert attempt["status"] == "success"
    assert attempt["model_traffic"]["calls"] == 2 and attempt["usage"]["llm_calls"] == 2
    assert (item / "attempt-1" / MODEL_CALLS_NAME).exists()


def test_a_429_the_agent_retried_itself_is_in_the_journal(docker_engine, base_image,
                                                          tmp_path):
    script = LlmScript(turns=[fail("rate_limit", retry_after_s=0.01), APPLY, DONE])
    with ScriptedLLM(script) as llm:
        out, item = run_commit(tmp_path, "own-retry", llm, "--gateway-retries", "0",
                               retries_429=2)
    assert out.returncode == 0, out.stderr[-3000:]
    [attempt] = attempts(item)  # the agent's client recovered: one attempt, a success
    assert attempt["status"] == "success"
    traffic = attempt["model_traffic"]
    assert traffic["upstream_429"] == 1 and traffic["agent_saw_429"] == 1
    assert traffic["calls"] == 3 and attempt["usage"]["llm_calls"] == 2


def test_a_tiny_token_budget_ends_the_attempt_budget_exhausted_and_keeps_the_patch(
        docker_engine, base_image, tmp_path):
    with ScriptedLLM(LlmScript(turns=[APPLY, DONE])) as llm:
        out, item = run_commit(tmp_path, "budget", llm, "--attempt-token-budget", "1")
        served = llm.turns_served
    assert out.returncode == 14, out.stderr[-3000:]
    [attempt] = attempts(item)  # permanent: not retried
    assert attempt["signature"]["name"] == "budget_exhausted"
    assert attempt["signature"]["error_class"] == "permanent"
    assert attempt["model_traffic"]["budget_exhausted"] is True and served == 1
    assert "block_allocator" in (item / "model_patch.diff").read_text()  # work so far kept


def test_a_recorded_attempt_replays_offline_to_the_same_patch(docker_engine, base_image,
                                                              tmp_path):
    with ScriptedLLM(LlmScript(turns=[APPLY, DONE], api_key=SecretStr(KEY))) as llm:
        out, item = run_commit(tmp_path, "recorded", llm)
    assert out.returncode == 0, out.stderr[-3000:]
    record = item / "attempt-1" / MODEL_CALLS_NAME
    out, again = run_commit(tmp_path, "replayed", None, "--gateway-replay", str(record),
                            env={KEY_ENV: ""})
    assert out.returncode == 0, out.stderr[-3000:]
    digest = [hashlib.sha256((d / "model_patch.diff").read_bytes()).hexdigest()
              for d in (item, again)]
    assert digest[0] == digest[1] and (item / "model_patch.diff").stat().st_size > 0
    assert attempts(again)[0]["model_traffic"]["calls"] == 2


def test_a_batch_paces_itself_under_the_providers_rate_limit(docker_engine, base_image,
                                                             demo_repo, tmp_path):
    """6 demo items, 3 workers, a provider allowing 2 calls per 2 s (429 above it): no attempt
    ends rate_limit; the records show the provider's 429s waited out by the gateway."""
    plan = tmp_path / "plan.json"
    assert run_cli("plan", "--demo", "6", "-o", str(plan)).returncode == 0
    script = LlmScript(turns=[APPLY] * 6, rate_limit=RateWindow(requests=2, window_s=2))
    state = tmp_path / "state"
    with ScriptedLLM(script) as llm:
        out = run_cli("run", str(plan), "--state-dir", str(state), "--run-id", "paced",
                      "--skip-bench", "--backoff", "0", "--no-progress", "--order", "plan",
                      "--workers", "3", "--agent", "script", "--agent-script",
                      str(gateway_agent_script(tmp_path / "agent.sh", one_call=True)), "--base-url",
                      llm.base_url, "--api-key-env", KEY_ENV, env={KEY_ENV: KEY})
        upstream_statuses = [r.status for r in llm.requests]
    assert out.returncode == 0, out.stderr[-3000:]
    layout, key = StateLayout(root=state), RunKey(task="demo", agent="script", model="none",
                                                  run_id="paced")
    journals = [load_journal(layout.journal_path(key, f"demo-{n:04d}")) for n in range(6)]
    signatures = [a.signature.name for j in journals for a in j.attempts if a.signature]
    assert "rate_limit" not in signatures
    assert [j.attempts[-1].status.value for j in journals] == ["success"] * 6
    traffic = [a.model_traffic for j in journals for a in j.attempts]
    assert sum(t.agent_saw_429 for t in traffic) == 0
    assert upstream_statuses.count(429) > 0  # the provider did refuse...
    assert sum(t.gateway_retries for t in traffic) == upstream_statuses.count(429)  # ...inside
    print("pacing:", [(t.calls, t.upstream_429, t.gateway_retries, t.waited_s)
                      for t in traffic])
