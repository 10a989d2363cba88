"""A scripted LLM agent for batch tests, over real HTTP.

The agent is the `script` agent running `agent_script(...)` in its sandbox: it sends the prompt
to a model endpoint (a ScriptedLLM on 127.0.0.1, one server per plan item, so every item has its
own script of model turns), then runs the `bash` tool calls the model answers with. On an API
error it prints the error body to stderr the way OpenAI clients do ("Error code: 429 - {...}")
and exits 1, so the taxonomy names the failure. The agent sandbox must use host networking to
reach 127.0.0.1 (`--agent-network host`): containers are never pointed at private addresses.

Each server counts the requests it answered and lets a test wait for them (a condition, not a
poll): requests per item are a side channel for "how many times did this item's agent run".
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator

from executor.parts.demo import REFERENCE_AGENT_PATCH
from executor.testing.llm_script import LlmScript, Turn, call, fail, reply
from executor.testing.scripted_llm import ScriptedLLM

KEY = "sk-isobench-ci-0123456789"

# What the model says: apply the fix (the demo's reference patch), or start something that
# blocks until the test kills it.
APPLY = reply("Applying the fix.", call(
    "bash", command=f"git apply <<'PATCH'\n{REFERENCE_AGENT_PATCH.read_text()}PATCH"))
BLOCK = reply("Benchmarking first.", call("bash", command="sleep 600"))
RATE_LIMITED = fail("rate_limit")

SCRIPT = r'''#!/bin/bash
# Scripted agent: one model call over real HTTP, then the tool calls it answers with.
set -eu
case "$ISOBENCH_ITEM_ID" in
{cases}
  *) echo "no model endpoint for $ISOBENCH_ITEM_ID" >&2; exit 2 ;;
esac
exec python3 - "$ENDPOINT" <<'PY'
import json, os, subprocess, sys, urllib.error, urllib.request
prompt = open(os.environ["ISOBENCH_PROMPT_FILE"]).read()
body = {{"model": "scripted-model", "messages": [{{"role": "user", "content": prompt}}],
        "tools": [{{"type": "function", "function": {{"name": "bash", "parameters": {{
            "type": "object", "properties": {{"command": {{"type": "string"}}}}}}}}}}]}}
request = urllib.request.Request(sys.argv[1] + "/chat/completions", json.dumps(body).encode(),
                                 {{"Content-Type": "application/json",
                                  "Authorization": "Bearer {key}"}})
try:
    answer = json.load(urllib.request.urlopen(request, timeout=120))
except urllib.error.HTTPError as err:
    print(f"Error code: {{err.code}} - {{err.read().decode()}}", file=sys.stderr)
    sys.exit(1)
for tool_call in answer["choices"][0]["message"].get("tool_calls") or []:
    command = json.loads(tool_call["function"]["arguments"])["command"]
    subprocess.run(["bash", "-c", command], check=True)
PY
'''


class CountingLLM(ScriptedLLM):
    """A ScriptedLLM whose requests a test can wait for."""

    def __init__(self, script: LlmScript):
        super().__init__(script)
        self._arrived = threading.Condition()

    def handle(self, *args, **kwargs):
        answer = super().handle(*args, **kwargs)
        with self._arrived:
            self._arrived.notify_all()
        return answer

    def wait_for_requests(self, count: int, timeout: float = 300) -> bool:
        """Block until `count` requests were answered. The timeout only turns a hang into a
        failure; nothing waits on time for synchronisation."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)


@contextlib.contextmanager
def model_servers(turns: dict[str, list[Turn]], wrong_key: set[str] = frozenset()
                  ) -> Iterator[dict[str, CountingLLM]]:
    """One server per item with that item's turns; items in `wrong_key` expect another key
    than the agent sends (a real 401)."""
    with contextlib.ExitStack() as stack:
        servers = {}
        for item, item_turns in turns.items():
            key = "sk-someone-else" if item in wrong_key else KEY
            servers[item] = stack.enter_context(CountingLLM(LlmScript(turns=item_turns,
                                                                      api_key=key)))
        yield servers


def agent_script(path: Path, servers: dict[str, CountingLLM]) -> Path:
    cases = "\n".join(f"  {item}) ENDPOINT={llm.base_url} ;;" for item, llm in servers.items())
    path.write_text(SCRIPT.format(cases=cases, key=KEY))
    return path


def agent_runs(servers: dict[str, CountingLLM]) -> dict[str, int]:
    """Model requests per item: how often each item's agent ran."""
    return {item: len(llm.requests) for item, llm in servers.items()}
