"""Claude Code end to end: the real npm package (pinned, integrity-checked) in its bundle, run
headless in a sandbox on the demo through `isobench run-commit`, talking Anthropic Messages to
the controller's gateway, which talks to the scripted Messages server with the real key.

The bundle image is built once per engine (content-addressed tag) and copied out once per test
session; `--skip-bench` keeps each case to the agent phase. Each case adds one row to the
scenario table printed at the end of the module (run with -s to see it).
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from executor.parts import demo
from executor.parts.agents.claude_code import CLAUDE_CODE_NATIVE, CLAUDE_CODE_PACKAGE
from executor.testing.llm_script import LlmScript, TurnUsage, call, fail, reply
from executor.testing.scripted_llm import ScriptedLLM
from tests.conftest import rid, run_cli

pytestmark = [pytest.mark.docker]

KEY = "sk-ant-api03-isobench-test-key-9d41c7e2b8a05f36"
KEY_ENV = "ISOBENCH_TEST_ANTHROPIC_KEY"
MODEL = "claude-sonnet-4-5"  # priced by the default table
REPO = "/workspace/repo"
ALLOCATOR = "minivllm/block_allocator.py"
EDIT = f"cd {REPO} && printf '\\n# claude code was here\\n' >> {ALLOCATOR}"
DONE = reply("Done: the allocator is edited.")
# Everything the sandbox holds that a leak could hide in: every process's environment and
# every file written since the container started (printable bytes), sent to the model.
DUMP = ("env; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; "
        "find / -xdev -type f -newer /etc/hostname -not -path '/proc/*' 2>/dev/null "
        "| head -500 | xargs -r cat 2>/dev/null | tr -cd '[:print:]\\n' | head -c 300000")
TABLE: list[dict] = []


def bash(command: str, text: str | None = None, **usage) -> object:
    return reply(text, call("Bash", command=command, description="run"),
                 usage=TurnUsage(**usage) if usage else None)


def key_forms(secret: str) -> dict[str, str]:
    raw = secret.encode()
    return {"text": secret, "base64": base64.b64encode(raw).decode(), "hex": raw.hex()}


def run_claude(tmp_path: Path, turns: list, name: str, *extra: str):
    """Serve `turns`, run Claude Code on the demo; (process, item dir, requests)."""
    state, run_id = tmp_path / "state", rid(name)
    with ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(KEY), models=[MODEL])) as llm:
        out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--agent", "claude-code",
                      "--model", MODEL, "--base-url", llm.base_url, "--api-key-env", KEY_ENV,
                      "--state-dir", str(state), "--run-id", run_id, "--skip-bench",
                      "--retry-wait-max", "0", "--max-steps", "10", *extra,
                      env={KEY_ENV: KEY})
        requests = llm.requests
    item = state / "runs" / "demo" / "claude-code" / MODEL / run_id / "demo-0000"
    return out, item, requests


def attempts(item: Path) -> list[dict]:
    return json.loads((item / "journal.json").read_text())["attempts"]


def table_row(name: str, out, item: Path) -> dict:
    last = attempts(item)[-1]
    usage, traffic = last.get("usage") or {}, last.get("model_traffic") or {}
    row = {"scenario": name, "exit": out.returncode, "status": last["status"],
           "ending": last.get("agent_outcome"),
           "signature": (last.get("signature") or {}).get("name"),
           "patch_bytes": len((item / "model_patch.diff").read_bytes())
           if (item / "model_patch.diff").exists() else 0,
           "tokens_in/cached/written/out": f"{usage.get('input_tokens', 0)}/"
           f"{usage.get('cached_input_tokens', 0)}/{usage.get('cache_creation_input_tokens', 0)}"
           f"/{usage.get('output_tokens', 0)}",
           "cost_usd": usage.get("cost_usd"),
           "traffic calls/ok/5xx/429": f"{traffic.get('calls', 0)}/{traffic.get('answered_ok', 0)}"
           f"/{traffic.get('upstream_5xx', 0)}/{traffic.get('upstream_429', 0)}",
           "attempts": len(attempts(item))}
    TABLE.append(row)
    return row


@pytest.fixture(scope="module", autouse=True)
def print_table():
    yield
    if TABLE:
        print("\nclaude-code scenario table")
        print(" | ".join(TABLE[0]))
        for row in TABLE:
            print(" | ".join(str(v) for v in row.values()))


def test_success_with_a_real_edit(docker_engine, base_image, tmp_path):
    turns = [bash(EDIT, "Editing the allocator.", input_tokens=6000, output_tokens=60,
                  cached_tokens=4000, cache_write_tokens=1000), DONE]
    out, item, requests = run_claude(tmp_path, turns, "cc-ok", "-v")
    assert out.returncode == 0, out.stderr[-3000:]
    row = table_row("success", out, item)
    last = attempts(item)[-1]
    assert last["status"] == "success" and last["agent_outcome"] == "finished"
    patch = (item / "model_patch.diff").read_text()
    assert ALLOCATOR in patch and "+# claude code was here" in patch
    usage = last["usage"]
    assert usage["llm_calls"] == 2 and usage["cached_input_tokens"] == 4000
    assert usage["cache_creation_input_tokens"] == 1000 and usage["cost_usd"] > 0
    # The controller's key check (GET /v1/models, Anthropic-style), then Claude Code's two
    # streamed Messages calls through the gateway, with Claude Code's own headers passed on.
    assert [(r.method, r.path, r.status) for r in requests] == [
        ("GET", "/v1/models", 200), ("POST", "/v1/messages", 200),
        ("POST", "/v1/messages", 200)]
    assert all(r.body["stream"] for r in requests[1:])
    assert all(r.headers["anthropic-version"] == "2023-06-01" for r in requests)
    assert all("claude-code-" in r.headers["anthropic-beta"] for r in requests[1:])
    assert all(r.headers["user-agent"].startswith("claude-cli/" + CLAUDE_CODE_PACKAGE.version)
               for r in requests[1:])
    assert row["traffic calls/ok/5xx/429"] == "2/2/0/0"
    manifest = json.loads((item / "manifest.json").read_text())
    config = manifest["agent"]["config"]
    assert manifest["agent"]["version"] == CLAUDE_CODE_PACKAGE.version
    assert config["package"]["integrity"] == CLAUDE_CODE_PACKAGE.integrity
    assert config["native"]["integrity"] == CLAUDE_CODE_NATIVE.integrity
    assert config["bundle"]["tag"].startswith("isobench/agent-claude-code:")
    assert "[claude]" in out.stderr  # -v streamed its output
    stdout = (item / "attempt-1" / "agent_stdout.txt").read_text()
    assert '"type":"result"' in stdout and '"subtype":"success"' in stdout


def test_provider_refusing_for_good_exits_16(docker_engine, base_image, tmp_path):
    out, item, requests = run_claude(tmp_path, [fail("overloaded")] * 4, "cc-529",
                                     "--max-attempts", "2")
    row = table_row("provider refuses (529 each call)", out, item)
    assert out.returncode == 16, out.stderr[-3000:]
    runs = attempts(item)
    assert [a["status"] for a in runs] == ["agent_error", "agent_error"]
    assert {a["signature"]["name"] for a in runs} == {"provider_unavailable"}
    assert "529" in runs[-1]["signature"]["evidence"]
    assert [r.status for r in requests] == [200, 529, 529]  # its own retries are off
    assert row["patch_bytes"] == 0


def test_budget_exhausted_keeps_the_patch(docker_engine, base_image, tmp_path):
    turns = [bash(EDIT, "Editing.", input_tokens=5000, output_tokens=80), DONE]
    out, item, requests = run_claude(tmp_path, turns, "cc-budget",
                                     "--attempt-token-budget", "1000")
    row = table_row("budget exhausted", out, item)
    runs = attempts(item)
    assert len(runs) == 1, out.stderr[-3000:]  # permanent: never retried
    assert runs[0]["signature"]["name"] == "budget_exhausted"
    assert runs[0]["model_traffic"]["budget_exhausted"]
    patch = (item / "model_patch.diff").read_text()
    assert "+# claude code was here" in patch and row["patch_bytes"] > 0
    assert out.returncode == 14, out.stderr[-3000:]
    # One call answered upstream; every later one refused by the gateway, never forwarded.
    assert [r.status for r in requests] == [200, 200]


def test_max_turns_is_its_own_ending_and_keeps_the_patch(docker_engine, base_image, tmp_path):
    """--max-steps 1 is Claude Code's --max-turns 1: it edits, then stops with
    error_max_turns before it can say it is done."""
    out, item, _ = run_claude(tmp_path, [bash(EDIT, "Editing."), DONE], "cc-turns",
                              "--max-steps", "1")
    table_row("max turns (--max-steps 1)", out, item)
    [only] = attempts(item)
    assert only["agent_outcome"] == "max_steps", out.stderr[-3000:]
    assert only["signature"]["name"] == "max_steps"
    assert "Reached maximum number of turns (1)" in only["signature"]["evidence"]
    assert "+# claude code was here" in (item / "model_patch.diff").read_text()


def test_the_key_is_nowhere(docker_engine, base_image, tmp_path):
    """The sandbox dumps every process environment and every file it wrote to the model.
    The key's text, base64 and hex forms must be in none of: that traffic, the state dir, the
    console, the bundle image."""
    out, item, requests = run_claude(tmp_path, [bash(DUMP, "Looking around."), bash(EDIT),
                                                DONE], "cc-key")
    assert out.returncode == 0, out.stderr[-3000:]
    table_row("key search", out, item)
    forms = key_forms(KEY)
    reached_model = json.dumps([[r.body, {k: v for k, v in r.headers.items()
                                          if k != "x-api-key"}] for r in requests])
    # The dump did reach the model: the sandbox's environment, with the attempt token in it.
    assert "ANTHROPIC_API_KEY=isobench-attempt-" in reached_model
    hits = {where: [name for name, form in forms.items() if form in text]
            for where, text in {
                "model traffic": reached_model,
                "console": out.stdout + out.stderr,
            }.items()}
    hits["state"] = [f"{p.name}:{name}" for p in (tmp_path / "state").rglob("*") if p.is_file()
                     for name, form in forms.items() if form.encode() in p.read_bytes()]
    manifest = json.loads((item / "manifest.json").read_text())
    image = manifest["agent"]["config"]["bundle"]["image_id"]
    shown = "".join(subprocess.run(argv, capture_output=True, text=True, check=True).stdout
                    for argv in (["docker", "history", "--no-trunc", image],
                                 ["docker", "inspect", image]))
    hits["bundle image"] = [name for name, form in forms.items() if form in shown]
    print(f"\nkey search (text, base64, hex): {hits}")
    assert hits == {"model traffic": [], "console": [], "state": [], "bundle image": []}


def test_a_recorded_attempt_replays_offline_to_the_same_patch(docker_engine, base_image,
                                                              tmp_path):
    """Claude Code mints a session id, a device id and ids for the files it keeps (a large
    output saved under its session directory) every run, so a rerun's requests are other
    bytes; the gateway's replay key for Messages sets exactly those aside
    (gateway/messages_key.py). The rerun is served from the record alone: the model server
    it is pointed at stays up and receives nothing, and it has no key."""
    import hashlib

    from executor.parts.gateway.record import read_calls

    big = f"cd {REPO} && seq 1 60000"  # over Claude Code's limit: saved to a file, named
    out, item, _ = run_claude(tmp_path, [bash(big, "Looking."), bash(EDIT), DONE], "cc-recorded")
    assert out.returncode == 0, out.stderr[-3000:]
    table_row("recorded for replay", out, item)
    record = item / "attempt-1" / "model_calls.jsonl"
    recorded = read_calls(record)
    assert "/tool-results/" in json.dumps(recorded[1].request_body)  # a minted path was sent
    run_id = rid("cc-replayed")
    with ScriptedLLM(LlmScript(turns=[], api_key=SecretStr(KEY), models=[MODEL])) as idle:
        again_out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--agent", "claude-code",
                            "--model", MODEL, "--base-url", idle.base_url,
                            "--api-key-env", KEY_ENV, "--gateway-replay", str(record),
                            "--state-dir", str(tmp_path / "state"), "--run-id", run_id,
                            "--skip-bench", "--retry-wait-max", "0", "--max-steps", "10",
                            env={KEY_ENV: ""})
        reached = idle.requests
    again = tmp_path / "state" / "runs" / "demo" / "claude-code" / MODEL / run_id / "demo-0000"
    row = table_row("replayed offline (server idle, no key)", again_out, again)
    print(f"\nreplay rerun: exit {again_out.returncode}, ending {row['ending']}, patch bytes "
          f"{row['patch_bytes']}, requests that reached the server {len(reached)}")
    assert again_out.returncode == 0, again_out.stderr[-3000:]
    assert reached == []
    patches = [(d / "model_patch.diff").read_bytes() for d in (item, again)]
    assert patches[0] and hashlib.sha256(patches[0]).digest() == hashlib.sha256(
        patches[1]).digest()
    [attempt] = attempts(again)
    assert attempt["agent_outcome"] == "finished"
    assert attempt["model_traffic"]["calls"] == len(recorded) == 3
    assert attempt["model_traffic"]["answered_ok"] == 3
    replayed = read_calls(again / "attempt-1" / "model_calls.jsonl")
    # Every request was other bytes than the recorded one, and had the recorded key.
    assert [c.replay_key for c in replayed] == [c.replay_key for c in recorded]
    assert all(c.replay_key for c in replayed) and not any(c.gateway_error for c in replayed)
    assert not {c.request_sha256 for c in replayed} & {c.request_sha256 for c in recorded}
    forms = key_forms(KEY)
    hits = [f"{p.relative_to(tmp_path)}:{name}" for p in (tmp_path / "state").rglob("*")
            if p.is_file() for name, form in forms.items() if form.encode() in p.read_bytes()]
    hits += [name for name, form in forms.items() if form in again_out.stdout + again_out.stderr]
    assert hits == []
