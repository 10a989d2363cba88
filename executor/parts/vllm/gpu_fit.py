"""Will a model's weights fit on one GPU? An estimate from its name, to refuse early.

ISO-Bench scheduled 70B and 671B models on single GPUs and learned it at run time. Parameters
come from a short table of families whose names hide their size (MoE, code names), else from
the `<N>B` in the name; FP8 checkpoints take one byte per parameter, everything else two.
"""

from __future__ import annotations

import re

H100_GB = 80
H200_GB = 141
# Weights are not all of it (KV cache, activations, CUDA graphs): leave a tenth of the card.
USABLE_FRACTION = 0.9

KNOWN_PARAMS_B: tuple[tuple[str, float], ...] = (
    ("deepseek-v2-lite", 15.7), ("deepseek-coder-v2-lite", 15.7), ("deepseek-v2", 236.0),
    ("deepseek-v3", 671.0), ("deepseek-r1", 671.0), ("nemotron-4-340b", 340.0),
    ("mixtral-8x7b", 46.7), ("mixtral-8x22b", 141.0), ("llama-4-scout-17b-16e", 109.0),
    ("llama-4-maverick", 400.0), ("qwen3-30b-a3b", 30.5), ("phi-1_5", 1.4),
)


def params_billion(model: str) -> float | None:
    name = model.lower().rsplit("/", 1)[-1]
    for family, params in KNOWN_PARAMS_B:
        if family in name:
            return params
    if m := re.search(r"(?<![\d.])(\d+(?:\.\d+)?)([bm])(?![a-z])", name):
        value = float(m.group(1))
        return value if m.group(2) == "b" else value / 1000
    return None


def weight_gb(model: str) -> float | None:
    params = params_billion(model)
    if params is None:
        return None
    bytes_per_param = 1 if "fp8" in model.lower() else 2
    return params * bytes_per_param


def single_gpu_problem(model: str) -> tuple[str | None, str | None]:
    """(reason it cannot run on one GPU, or a note that it needs the larger card)."""
    weights = weight_gb(model)
    if weights is None:
        return None, None
    if weights > H200_GB * USABLE_FRACTION:
        return (f"{model}: ~{weights:.0f} GB of weights do not fit one GPU "
                f"(largest lent: {H200_GB} GB)"), None
    if weights > H100_GB * USABLE_FRACTION:
        return None, (f"{model}: ~{weights:.0f} GB of weights need a {H200_GB} GB GPU "
                      f"(H200), not an {H100_GB} GB H100")
    return None, None
