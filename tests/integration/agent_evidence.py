"""What the CLI agents' end-to-end tests look at, shared: the key in every form it could leak
in, a scripted server that keeps each request as it arrived and inspects the run's live
sandboxes, and the one-line scenario row each test prints for the closing notes' tables."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from executor.engine.sandbox import LABEL_MANAGED, LABEL_RUN
from executor.testing.llm_script import LlmScript
from executor.testing.scripted_llm import ScriptedLLM


def encodings(secret: str) -> list[bytes]:
    """The key's text, base64 (padded or not) and hex (either case)."""
    raw = secret.encode()
    return [raw, base64.b64encode(raw), base64.b64encode(raw).rstrip(b"="), raw.hex().encode(),
            raw.hex().upper().encode()]


def holds(secret: str, data: bytes) -> bool:
    return any(form in data for form in encodings(secret))


class WatchingLLM(ScriptedLLM):
    """Keeps every request as it arrived (before the server's own redaction; every header but
    the Authorization the provider needs) and inspects the run's live sandboxes while it
    answers the first model call."""

    def __init__(self, script: LlmScript, run_id: str):
        super().__init__(script)
        self.run_id, self.inspected, self.raw = run_id, "", []

    def handle(self, method, path, headers, raw):
        kept = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        self.raw.append(json.dumps(kept).encode() + raw)
        if method == "POST" and not self.inspected:
            ids = subprocess.run(["docker", "ps", "-q", "--filter", f"label={LABEL_MANAGED}",
                                  "--filter", f"label={LABEL_RUN}={self.run_id}"],
                                 capture_output=True, text=True, check=True).stdout.split()
            self.inspected = subprocess.run(["docker", "inspect", *ids], capture_output=True,
                                            text=True, check=False).stdout \
                if ids else "(no sandbox)"
        return super().handle(method, path, headers, raw)


def attempts(item: Path) -> list[dict]:
    return json.loads((item / "journal.json").read_text())["attempts"]


def scenario_row(agent: str, name: str, out, item: Path) -> str:
    """One line of an agent's scenario table (printed with -s; the closing notes paste it)."""
    last = attempts(item)[-1]
    patch = item / "model_patch.diff"
    traffic = last.get("model_traffic") or {}
    usage = last.get("usage") or {}
    return (f"| {agent} | {name} | {out.returncode} | {last.get('agent_outcome')} / "
            f"{(last.get('signature') or {}).get('name', '-')} | "
            f"{patch.stat().st_size if patch.exists() else 0} | "
            f"{usage.get('input_tokens', 0)}+{usage.get('output_tokens', 0)} | "
            f"{traffic.get('calls', 0)} calls, {traffic.get('answered_ok', 0)} ok |")


def bundle_image_shows(item: Path) -> str:
    """`docker history` and `docker inspect` of the run's agent bundle image."""
    manifest = json.loads((item / "manifest.json").read_text())
    image = manifest["agent"]["config"]["bundle"]["image_id"]
    return "".join(subprocess.run(argv, capture_output=True, text=True, check=True).stdout
                   for argv in (["docker", "history", "--no-trunc", image],
                                ["docker", "inspect", image]))
