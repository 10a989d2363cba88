#!/usr/bin/env python3
"""What the model gateway adds to each call: the same Chat Completions request sent directly to
the scripted OpenAI-compatible server and through the gateway (which records every call,
bodies included), alternating, over loopback with keep-alive clients. Prints median and p99 of
each path and of the per-pair difference.

    .venv/bin/python scripts/gateway_latency.py --calls 2000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executor.parts.gateway import Gateway, GatewayOptions, Upstream  # noqa: E402
from executor.testing.llm_script import LlmScript, TurnUsage, reply  # noqa: E402
from executor.testing.scripted_llm import ScriptedLLM  # noqa: E402

KEY = "sk-latency-probe-0123456789abcdef"
BODY = {"model": "scripted-model", "messages": [{"role": "user", "content": "x" * 2000}]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(session: requests.Session, url: str, key: str) -> float:
    started = time.perf_counter()
    answer = session.post(url, json=BODY, headers={"Authorization": f"Bearer {key}"})
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="Calls per path.")
    parser.add_argument("--warmup", type=int, default=50, help="Unmeasured calls per path.")
    parser.add_argument("--no-bodies", action="store_true", help="Record without bodies.")
    args = parser.parse_args()
    total = args.calls + args.warmup
    turns = [reply("ok", usage=TurnUsage(input_tokens=500, output_tokens=1))] * (2 * total)
    direct, through = [], []
    with tempfile.TemporaryDirectory() as tmp, \
            ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(KEY))) as llm, \
            Gateway(GatewayOptions(keep_bodies=not args.no_bodies)) as gateway:
        upstream = Upstream(base_url=llm.base_url, api_key=SecretStr(KEY))
        with gateway.leased(Path(tmp) / "calls.jsonl", upstream=upstream) as lease, \
                requests.Session() as to_llm, requests.Session() as to_gateway:
            for n in range(total):
                d = timed(to_llm, f"{llm.base_url}/chat/completions", KEY)
                g = timed(to_gateway, f"{gateway.base_url}/chat/completions", lease.token)
                if n >= args.warmup:
                    direct.append(d)
                    through.append(g)
    added = [g - d for d, g in zip(direct, through)]
    ms = lambda v: f"{v * 1000:7.3f} ms"  # noqa: E731
    print(f"gateway latency over loopback, {args.calls} calls per path "
          f"(bodies {'off' if args.no_bodies else 'recorded'}):")
    for name, values in (("direct", direct), ("gateway", through), ("added", added)):
        print(f"  {name:8s} median {ms(statistics.median(values))}   "
              f"p99 {ms(percentile(values, 0.99))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
