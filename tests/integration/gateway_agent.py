"""A scripted agent that reaches its model the way LLM agents do under the gateway: the script
agent given --base-url reads $OPENAI_BASE_URL and $OPENAI_API_KEY (the gateway and the attempt
token), loops over Chat Completions running the `bash` tool calls it is answered with, and ends
when a reply has none. Requests are deterministic (same prompt, same tool output), so a record
of one run replays. On an HTTP error its client retries a 429 up to $RETRIES_429 times after
retry-after (as the openai client does), else prints the error the way OpenAI clients do and
exits 1, so the taxonomy names the failure. It can also print the environment it sees.
"""

from __future__ import annotations

from pathlib import Path

from executor.parts.demo import REFERENCE_AGENT_PATCH
from executor.testing.llm_script import call, reply

APPLY = reply("Applying the fix.", call(
    "bash", command=f"git apply <<'PATCH'\n{REFERENCE_AGENT_PATCH.read_text()}PATCH"))
DONE = reply("Done.")

SCRIPT = r'''#!/bin/bash
set -eu
SHOW_ENV={show_env}
export RETRIES_429={retries_429} ONE_CALL={one_call}
if [ "$SHOW_ENV" = 1 ]; then
  # Reversed, the value escapes the controller's redactor: what the test reads is what the
  # agent really holds.
  python3 -c 'import os; print("key reversed:", os.environ["OPENAI_API_KEY"][::-1])'
  python3 -c 'print("environ reversed:", open("/proc/self/environ", "rb").read()[::-1].hex())'
  echo "--- env:"; env
fi
exec python3 - <<'PY'
import json, os, subprocess, sys, time, urllib.error, urllib.request
base, key = os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"]
retries = int(os.environ.get("RETRIES_429", "0"))
messages = [{"role": "user", "content": open(os.environ["ISOBENCH_PROMPT_FILE"]).read()}]
tools = [{"type": "function", "function": {"name": "bash", "parameters": {
    "type": "object", "properties": {"command": {"type": "string"}}}}}]
def ask():
    body = json.dumps({"model": "scripted-model", "messages": messages, "tools": tools}).encode()
    for attempt in range(retries + 1):
        request = urllib.request.Request(base + "/chat/completions", body, {
            "Content-Type": "application/json", "Authorization": "Bearer " + key})
        try:
            return json.load(urllib.request.urlopen(request, timeout=120))
        except urllib.error.HTTPError as err:
            text = err.read().decode()
            if err.code == 429 and attempt < retries:
                time.sleep(float(err.headers.get("retry-after") or 1))
                continue
            print(f"Error code: {err.code} - {text}", file=sys.stderr)
            sys.exit(1)
while True:
    message = ask()["choices"][0]["message"]
    messages.append(message)
    calls = message.get("tool_calls") or []
    if not calls:
        break
    for tool_call in calls:
        command = json.loads(tool_call["function"]["arguments"])["command"]
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
        messages.append({"role": "tool", "tool_call_id": tool_call["id"],
                         "content": done.stdout + done.stderr})
    if os.environ["ONE_CALL"] == "1":
        break
PY
'''


def gateway_agent_script(path: Path, show_env: bool = False, retries_429: int = 0,
                         one_call: bool = False) -> Path:
    """The script; `one_call`: stop after the first answer's tool calls (batch items sharing
    one scripted server then need no particular order of turns)."""
    path.write_text(SCRIPT.replace("{show_env}", str(int(show_env)))
                    .replace("{retries_429}", str(retries_429))
                    .replace("{one_call}", str(int(one_call))))
    return path
