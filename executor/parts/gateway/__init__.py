"""The controller's model gateway (see server.py): keys stay outside the sandbox, one limiter
for the whole batch, budgets, and every call on record (and replayable).

    server.py   the OpenAI-compatible proxy (aiohttp), one per controller process
    limiter.py  requests/tokens per minute, concurrency, retry-after, shared by all workers
    budget.py   token and dollar budgets per attempt and per run
    record.py   attempt-<n>/model_calls.jsonl and its summary for the journal
    replay.py   serve a record again with no upstream (`replay_from`)
    attempt.py  the pipeline's per-attempt lease and journal numbers
    options.py  the CLI options and the controller's gateway context
"""

from executor.parts.gateway.replay import ReplaySource, replay_from
from executor.parts.gateway.server import Gateway, GatewayOptions
from executor.parts.gateway.upstream import ModelRoute, Upstream, check_upstream

__all__ = ["Gateway", "GatewayOptions", "ModelRoute", "ReplaySource", "Upstream",
           "check_upstream", "replay_from"]
