"""The vLLM output check: greedy generations of a fixed prompt set with dummy weights.

A perf patch must not change what the engine generates. With `--load-format dummy` the weights
are random but seeded, so greedy decoding (temperature 0) of the same prompts gives the same
token ids on base and on a correct patch; the agent variant's ids must equal base's
(executor/parts/bench/checks.py). Token ids rather than text: no detokenizer differences, and a
changed sampler or kernel shows as a changed id. Needs a GPU: defined here for every
catalogued commit whose benchmark already runs with dummy weights, exercised only on GPU hosts.
Kernels that are numerically different but equivalent (a new reduction order) can flip a
greedy token; such a mismatch is shown with its diff, for a person to judge.
"""

from __future__ import annotations

import json

# Short, varied prompts (code, prose, a list, a number): enough to exercise prefill, decode
# and the sampler; 16 tokens each keeps the check to seconds after the engine starts.
PROMPTS = ("The capital of France is", "def fibonacci(n):", "1, 2, 3, 5, 8,",
           "In the beginning", "The quick brown fox")
MAX_TOKENS = 16


def greedy_output_check(model: str, bench_command: str) -> str | None:
    """The check's shell command for a commit benchmarked with dummy weights; None otherwise
    (a real checkpoint would be downloaded, which benchmark containers cannot do)."""
    if "--load-format dummy" not in bench_command:
        return None
    return (f"python - <<'PY'\n"
            f"from vllm import LLM, SamplingParams\n"
            f"llm = LLM(model={json.dumps(model)}, load_format='dummy', seed=0)\n"
            f"params = SamplingParams(temperature=0.0, max_tokens={MAX_TOKENS})\n"
            f"for out in llm.generate({list(PROMPTS)!r}, params):\n"
            f"    print(list(out.outputs[0].token_ids))\n"
            f"PY")
