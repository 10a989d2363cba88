"""LLM agents end to end: the real mini-swe-agent (PyPI) in a sandbox on the demo, driven by the
scripted OpenAI-compatible server over real HTTP, through `isobench run-commit` as a user runs
it. The bundle is built once per engine (content-addressed tag) and copied out once per test
session; `--skip-bench` keeps each case to the agent phase.
"""

import json
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from executor.parts import demo
from executor.testing.llm_script import LlmScript, TurnUsage, call, fail, reply
from executor.testing.scripted_llm import ScriptedLLM
from tests.conftest import run_cli

pytestmark = [pytest.mark.docker]

KEY = "sk-isobench-test-7f3a9c2e51d84b06aa17"
KEY_ENV = "ISOBENCH_TEST_API_KEY"
MODEL = "scripted-model"
PRICES = f'source = "test"\n[models."{MODEL}"]\ninput = 2.0\ncached_input = 0.5\noutput = 8.0\n'
REPO = "/workspace/repo"
ALLOCATOR = "minivllm/block_allocator.py"
EDIT = f"cd {REPO} && printf '\\n# isobench agent was here\\n' >> {ALLOCATOR}"
SUBMIT = reply(None, call("bash", command="echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"))


def bash(command: str, text: str | None = None, **usage) -> object:
    return reply(text, call("bash", command=command),
                 usage=TurnUsage(**usage) if usage else None)


def run_mini(tmp_path: Path, turns: list, run_id: str, *, key: str = KEY, extra=()):
    """Serve `turns`, run mini-swe-agent on the demo, return (process, item dir, requests)."""
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    state = tmp_path / "state"
    with ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(KEY), models=[MODEL])) as llm:
        out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--agent", "mini-swe-agent",
                      "--model", MODEL, "--base-url", llm.base_url, "--api-key-env", KEY_ENV,
                      "--state-dir", str(state), "--run-id", run_id, "--skip-bench",
                      "--price-table", str(prices), "--retry-wait-max", "0", "--max-steps",
                      "10", *extra, env={KEY_ENV: key})
        requests = llm.requests
    item = state / "runs" / "demo" / "mini-swe-agent" / MODEL / run_id / "demo-0000"
    return out, item, requests


def journal(item: Path) -> dict:
    return json.loads((item / "journal.json").read_text())


# ----------------------------------------------------------------------- success, usage, cost


def test_mini_swe_agent_change_is_collected_with_usage_and_cost(docker_engine, base_image,
                                                                tmp_path):
    turns = [bash("ls && git status --short", "Looking.", input_tokens=3000, output_tokens=40,
                  cached_tokens=1000),
             bash(EDIT, "Editing.", input_tokens=3500, output_tokens=60),
             SUBMIT]
    out, item, requests = run_mini(tmp_path, turns, "ok", extra=["-v"])
    assert out.returncode == 0, out.stderr[-3000:]
    attempt = journal(item)["attempts"][-1]
    assert attempt["status"] == "success" and attempt["agent_outcome"] == "finished"
    usage = attempt["usage"]
    assert usage["llm_calls"] == 3
    assert usage["input_tokens"] > 6500 and usage["cached_input_tokens"] == 1000
    expected = ((usage["input_tokens"] - 1000) * 2.0 + 1000 * 0.5
                + usage["output_tokens"] * 8.0) / 1e6
    assert usage["cost_usd"] == pytest.approx(expected)
    patch = (item / "model_patch.diff").read_text()
    assert ALLOCATOR in patch and "+# isobench agent was here" in patch
    # The controller's key check, then mini's three calls, through the gateway.
    assert [(r.path, r.status) for r in requests] == [("/v1/models", 200)] + [
        ("/v1/chat/completions", 200)] * 3
    traffic = attempt["model_traffic"]
    assert traffic["calls"] == 3 and traffic["answered_ok"] == 3
    assert "[mini]" in out.stderr  # -v streamed the agent's output
    manifest = json.loads((item / "manifest.json").read_text())
    assert manifest["agent"]["version"] == "2.4.6"
    assert manifest["agent"]["config"]["bundle"]["tag"].startswith("isobench/agent-mini-swe")
    files = {p.name for p in (item / "attempt-1").iterdir()}
    assert {"trajectory.json", "agent_stdout.txt", "agent_stderr.txt", "prompt.txt"} <= files


@pytest.mark.parametrize("case", ["commit", "untracked", "nothing"])
def test_commit_untracked_and_nothing(docker_engine, base_image, tmp_path, case):
    work = {
        "commit": [bash(f"{EDIT} && git add -A && git commit -qm faster && git log --oneline "
                        "-1")],
        "untracked": [bash(f"cd {REPO} && printf 'FAST = True\\n' > minivllm/fastpath.py")],
        "nothing": [bash("ls")],
    }[case]
    out, item, _ = run_mini(tmp_path, [*work, SUBMIT], case)
    attempt = journal(item)["attempts"]
    assert len(attempt) == 1  # none of these is worth a retry
    patch = (item / "model_patch.diff").read_text()
    if case == "nothing":
        assert out.returncode == 10, out.stderr[-2000:]
        assert attempt[-1]["status"] == "no_patch" and patch == ""
        return
    assert out.returncode == 0, out.stderr[-2000:]
    assert attempt[-1]["status"] == "success"
    if case == "commit":
        assert ALLOCATOR in patch and "+# isobench agent was here" in patch
    else:
        assert "minivllm/fastpath.py" in patch and "+FAST = True" in patch


# ----------------------------------------------------------------------- failures and retries


def test_rate_limit_is_retried_once_and_both_attempts_are_journaled(docker_engine, base_image,
                                                                    tmp_path):
    """With the gateway's own 429 retries off, the 429 reaches mini (whose retries are off
    too) and the controller retries the attempt."""
    turns = [fail("rate_limit", retry_after_s=0.01), bash(EDIT), SUBMIT]
    out, item, requests = run_mini(tmp_path, turns, "429", extra=["--gateway-retries", "0"])
    assert out.returncode == 0, out.stderr[-2000:]
    attempts = journal(item)["attempts"]
    assert [a["status"] for a in attempts] == ["agent_error", "success"]
    assert attempts[0]["signature"]["name"] == "rate_limit"
    assert attempts[0]["signature"]["error_class"] == "retryable"
    # The key check, then mini's calls (its own retries are off).
    assert [r.status for r in requests] == [200, 429, 200, 200]
    assert attempts[0]["model_traffic"]["agent_saw_429"] == 1
    assert (item / "attempt-1" / "trajectory.json").exists()
    assert "attempt 2 of 3" in out.stderr


def test_wrong_key_is_a_one_line_error_before_any_attempt(docker_engine, base_image, tmp_path):
    out, item, requests = run_mini(tmp_path, [SUBMIT], "401",
                                   key="sk-isobench-test-wrong-000000000000")
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"refused the key in ${KEY_ENV} (HTTP 401" in out.stderr
    assert not (item / "journal.json").exists()  # no attempt started
    assert [(r.path, r.status) for r in requests] == [("/v1/models", 401)]


def test_without_the_gateway_a_wrong_key_is_auth_and_not_retried(docker_engine, base_image,
                                                                 tmp_path):
    out, item, requests = run_mini(tmp_path, [SUBMIT], "401-direct",
                                   key="sk-isobench-test-wrong-000000000000",
                                   extra=["--no-gateway"])
    assert out.returncode == 14, out.stderr[-2000:]
    attempts = journal(item)["attempts"]
    assert len(attempts) == 1 and attempts[0]["status"] == "agent_error"
    assert attempts[0]["signature"]["name"] == "auth"
    assert attempts[0]["signature"]["error_class"] == "permanent"
    assert [r.status for r in requests] == [401]


UNPAIRED_AGENT = r'''
import json, sys, urllib.error, urllib.request
URL = "{url}/chat/completions"
def post(messages):
    body = json.dumps({{"model": "m", "messages": messages}}).encode()
    req = urllib.request.Request(URL, body, {{"Content-Type": "application/json"}})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())
messages = [{{"role": "user", "content": open(sys.argv[1]).read()}}]
msg = post(messages)["choices"][0]["message"]
messages.append(msg)
first = msg["tool_calls"][0]  # the bug: only the first of two parallel calls is answered
messages.append({{"role": "tool", "tool_call_id": first["id"], "content": "ok"}})
try:
    post(messages)
except urllib.error.HTTPError as err:
    sys.exit(f"Error code: {{err.code}} - {{err.read().decode()}}")
'''


def test_unpaired_tool_call_is_named_and_not_retried(docker_engine, base_image, tmp_path):
    """A minimal agent that answers only the first of two parallel tool calls: the server's
    400 names it, the controller classifies it tool_output_missing, and does not retry."""
    turns = [reply(None, call("bash", command="ls"), call("bash", command="pwd")), SUBMIT]
    with ScriptedLLM(LlmScript(turns=turns)) as llm:
        agent = tmp_path / "agent.py"
        agent.write_text(UNPAIRED_AGENT.format(url=llm.base_url))
        script = tmp_path / "agent.sh"
        script.write_text(f"cat > /tmp/agent.py <<'EOF'\n{agent.read_text()}\nEOF\n"
                          'python3 /tmp/agent.py "$ISOBENCH_PROMPT_FILE"\n')
        state = tmp_path / "state"
        out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--agent", "script", "--agent-script",
                      str(script), "--agent-network", "host", "--state-dir", str(state),
                      "--run-id", "unpaired", "--skip-bench", "--retry-wait-max", "0")
        statuses = [r.status for r in llm.requests]
    assert out.returncode == 14, out.stderr[-2000:]
    attempts = journal(state / "runs" / "demo" / "script" / "none" / "unpaired" / "demo-0000")
    attempts = attempts["attempts"]
    assert len(attempts) == 1
    sig = attempts[0]["signature"]
    assert sig["name"] == "tool_output_missing" and sig["error_class"] == "permanent"
    assert "call_2" in sig["evidence"]
    assert statuses == [200, 400]


# ----------------------------------------------------------------------- secrets


def test_the_api_key_is_nowhere(docker_engine, base_image, tmp_path):
    """The agent prints its key (as agents do); the key must not reach any file of the state
    dir, any image, or the console."""
    before = {image.id for image in docker_engine.images.list()}
    turns = [bash("echo key=$OPENAI_API_KEY; env | grep -i api_key"), bash(EDIT), SUBMIT]
    out, item, requests = run_mini(tmp_path, turns, "secrets", extra=["-v"])
    assert out.returncode == 0, out.stderr[-2000:]
    assert "key=[REDACTED]" in (item / "attempt-1" / "agent_stdout.txt").read_text()
    leaks = [str(p) for p in (tmp_path / "state").rglob("*")
             if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaks == []
    assert KEY not in out.stdout + out.stderr
    manifest = json.loads((item / "manifest.json").read_text())
    images = {manifest["agent"]["config"]["bundle"]["image_id"], *manifest["images"].values()}
    images |= {image.id for image in docker_engine.images.list()} - before
    for image in images:
        for argv in (["docker", "history", "--no-trunc", image], ["docker", "inspect", image]):
            shown = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            assert KEY not in shown, f"{' '.join(argv)} shows the key"
    assert all(r.headers["authorization"] == "[REDACTED]" for r in requests)
