"""A tiny, seeded Hugging Face model directory, so vLLM benchmarks run with no model download.

Benchmark containers cannot reach the hub, and a CPU host could not run the catalogued 7B models
anyway. vLLM needs only a config.json, a tokenizer and (for real weights) safetensors whose tensor
names and shapes match the architecture's HF checkpoints; this writes such a directory for a few
dense decoder architectures, so a commit's code paths for the catalogued model's architecture
still run. `--load-format dummy` ignores the weights (timing); the seeded weights back the
greedy-output check, whose outputs must differ between prompts, so they are scaled like a fresh
init rather than near zero. Pure Python + numpy (no torch on the host), and byte-for-byte
deterministic: the digest names the model in caches and reports.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

Architecture = Literal["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                       "OPTForCausalLM", "PhiForCausalLM"]
MODEL_TYPES: dict[str, str] = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
                               "Qwen2ForCausalLM": "qwen2", "OPTForCausalLM": "opt",
                               "PhiForCausalLM": "phi"}
# vLLM's opt.py and phi.py give attention as many K/V heads as query heads, whatever the config.
GQA_ARCHITECTURES = frozenset({"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"})
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")  # ids 0, 1, 2: what the configs' bos/eos ids name
INIT_STD = 0.02  # a fresh HF init's scale: logits vary with the prompt, unlike dummy's 1e-3


class TinyModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    architecture: Architecture
    # benchmark_latency's dummy prompts draw ids below 10,000: each must be a real token.
    vocab_size: int = Field(32000, gt=10_000)
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4  # head_dim 32: the smallest head size vLLM's CPU attention takes
    num_kv_heads: int = 2
    intermediate_size: int = 384
    max_position_embeddings: int = 2048
    seed: int = 0
    # config.json's torch_dtype, which `--dtype auto` resolves to; the weights are F32 whatever it says.
    torch_dtype: Literal["float32", "bfloat16", "float16"] = "float32"

    @model_validator(mode="after")
    def _heads_divide(self) -> TinyModelSpec:
        if self.hidden_size % self.num_heads or self.num_heads % self.num_kv_heads:
            raise ValueError("num_heads must divide hidden_size, and num_kv_heads num_heads")
        return self

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads if self.architecture in GQA_ARCHITECTURES else self.num_heads


def hf_config(spec: TinyModelSpec) -> dict:
    """config.json, with the field names the architecture's HF config class reads."""
    arch = spec.architecture
    config = {"architectures": [arch], "model_type": MODEL_TYPES[arch],
              "vocab_size": spec.vocab_size, "hidden_size": spec.hidden_size,
              "num_hidden_layers": spec.num_layers, "num_attention_heads": spec.num_heads,
              "max_position_embeddings": spec.max_position_embeddings,
              "torch_dtype": spec.torch_dtype, "bos_token_id": 1, "eos_token_id": 2,
              "tie_word_embeddings": False, "initializer_range": INIT_STD, "use_cache": True}
    if arch == "OPTForCausalLM":
        # word_embed_proj_dim == hidden_size: no project_in/out layers, as in opt-125m and up.
        # Untied lm_head, unlike real OPT: tied random embeddings mostly predict the token just
        # read, so greedy outputs repeat and the output check sees little (vLLM's opt.py and
        # transformers both honour tie_word_embeddings false).
        return config | {"ffn_dim": spec.intermediate_size, "word_embed_proj_dim": spec.hidden_size,
                         "do_layer_norm_before": True, "enable_bias": True,
                         "layer_norm_elementwise_affine": True, "activation_function": "relu",
                         "dropout": 0.0, "attention_dropout": 0.0}
    config |= {"intermediate_size": spec.intermediate_size, "num_key_value_heads": spec.kv_heads,
               "rope_theta": 10000.0, "rope_scaling": None, "attention_dropout": 0.0}
    if arch == "PhiForCausalLM":  # phi-1_5's shape: rotary on half of each head, LayerNorm
        return config | {"hidden_act": "gelu_new", "partial_rotary_factor": 0.5,
                         "layer_norm_eps": 1e-5, "qk_layernorm": False,
                         "resid_pdrop": 0.0, "embd_pdrop": 0.0}
    config |= {"hidden_act": "silu", "rms_norm_eps": 1e-5}
    if arch == "Qwen2ForCausalLM":
        return config | {"use_sliding_window": False, "sliding_window": spec.max_position_embeddings,
                         "max_window_layers": spec.num_layers}
    if arch == "MistralForCausalLM":
        return config | {"sliding_window": None}
    return config | {"attention_bias": False, "mlp_bias": False}


def weight_shapes(spec: TinyModelSpec) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes as the architecture's HF checkpoints (save_pretrained) hold them."""
    h, inter, vocab = spec.hidden_size, spec.intermediate_size, spec.vocab_size
    q_dim, kv_dim = spec.num_heads * spec.head_dim, spec.kv_heads * spec.head_dim
    shapes: dict[str, tuple[int, ...]] = {}

    def linear(name: str, out_dim: int, in_dim: int, bias: bool) -> None:
        shapes[f"{name}.weight"] = (out_dim, in_dim)
        if bias:
            shapes[f"{name}.bias"] = (out_dim,)

    def norm(name: str, bias: bool) -> None:
        shapes[f"{name}.weight"] = (h,)
        if bias:
            shapes[f"{name}.bias"] = (h,)

    if spec.architecture == "OPTForCausalLM":
        shapes["model.decoder.embed_tokens.weight"] = (vocab, h)
        # OPT's learned positions start at offset 2 (fairseq's padding legacy): two extra rows.
        shapes["model.decoder.embed_positions.weight"] = (spec.max_position_embeddings + 2, h)
        for n in range(spec.num_layers):
            layer = f"model.decoder.layers.{n}"
            for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
                linear(f"{layer}.self_attn.{proj}", h, h, bias=True)
            norm(f"{layer}.self_attn_layer_norm", bias=True)
            linear(f"{layer}.fc1", inter, h, bias=True)
            linear(f"{layer}.fc2", h, inter, bias=True)
            norm(f"{layer}.final_layer_norm", bias=True)
        norm("model.decoder.final_layer_norm", bias=True)
        linear("lm_head", vocab, h, bias=False)
        return shapes

    phi = spec.architecture == "PhiForCausalLM"
    qkv_bias = phi or spec.architecture == "Qwen2ForCausalLM"
    shapes["model.embed_tokens.weight"] = (vocab, h)
    for n in range(spec.num_layers):
        layer = f"model.layers.{n}"
        linear(f"{layer}.self_attn.q_proj", q_dim, h, bias=qkv_bias)
        linear(f"{layer}.self_attn.k_proj", kv_dim, h, bias=qkv_bias)
        linear(f"{layer}.self_attn.v_proj", kv_dim, h, bias=qkv_bias)
        if phi:
            linear(f"{layer}.self_attn.dense", h, q_dim, bias=True)
            linear(f"{layer}.mlp.fc1", inter, h, bias=True)
            linear(f"{layer}.mlp.fc2", h, inter, bias=True)
            norm(f"{layer}.input_layernorm", bias=True)
        else:
            linear(f"{layer}.self_attn.o_proj", h, q_dim, bias=False)
            linear(f"{layer}.mlp.gate_proj", inter, h, bias=False)
            linear(f"{layer}.mlp.up_proj", inter, h, bias=False)
            linear(f"{layer}.mlp.down_proj", h, inter, bias=False)
            norm(f"{layer}.input_layernorm", bias=False)
            norm(f"{layer}.post_attention_layernorm", bias=False)
    norm("model.final_layernorm" if phi else "model.norm", bias=phi)
    linear("lm_head", vocab, h, bias=phi)
    return shapes


def seeded_weights(spec: TinyModelSpec) -> dict[str, np.ndarray]:
    """Norm weights 1, biases 0, the rest uniform with std INIT_STD, drawn in weight_shapes' order.

    Only the bit generator's raw output is used: numpy keeps PCG64's stream fixed across
    versions but not its distributions' (normal() may change), and integer-to-float scaling by a
    power of two is exact, so the bytes are the same on every machine and numpy release."""
    bits = np.random.default_rng(spec.seed).bit_generator
    half_width = INIT_STD * 3 ** 0.5  # uniform(-a, a) has std a / sqrt(3)
    weights = {}
    for name, shape in weight_shapes(spec).items():
        if name.endswith(".bias"):
            weights[name] = np.zeros(shape, dtype="<f4")
        elif "norm" in name:
            weights[name] = np.ones(shape, dtype="<f4")
        else:
            top24 = (bits.random_raw(int(np.prod(shape))) >> np.uint64(40)).astype(np.float64)
            values = (top24 + 0.5 - 2 ** 23) * (half_width / 2 ** 23)
            weights[name] = values.astype("<f4").reshape(shape)
    return weights


def safetensors_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    """The safetensors format: u64 LE header length, JSON header padded to 8, raw LE data."""
    header: dict[str, dict] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, array in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return b"".join([len(text).to_bytes(8, "little"), text,
                     *(array.astype("<f4").tobytes() for array in tensors.values())])


def tokenizer_files(spec: TinyModelSpec) -> dict[str, dict]:
    """A WordLevel tokenizer ("w3" .. "w<vocab-1>" split on whitespace): nothing to train, and
    loadable by PreTrainedTokenizerFast alone. No decoder: tokenizers then joins with spaces.
    (transformers 5 swaps in Qwen2Tokenizer for model_type qwen2, which cannot read it; vLLM
    0.8.5-0.10 run on transformers 4, which keeps tokenizer_class.)"""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    vocab |= {f"w{i}": i for i in range(len(SPECIAL_TOKENS), spec.vocab_size)}
    added = [{"id": i, "content": token, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, token in enumerate(SPECIAL_TOKENS)]
    specials = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
    return {
        "tokenizer.json": {"version": "1.0", "truncation": None, "padding": None,
                           "added_tokens": added, "normalizer": None,
                           "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
                           "decoder": None,
                           "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}},
        # A chat template too, so chat endpoints and benchmarks that apply one have it.
        "tokenizer_config.json": specials | {
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": spec.max_position_embeddings,
            "add_bos_token": False, "clean_up_tokenization_spaces": False,
            "chat_template": "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"},
        "special_tokens_map.json": specials,
    }


def model_files(spec: TinyModelSpec, *, weights: bool) -> dict[str, bytes]:
    """Every file of the model directory, by name."""
    documents = {"config.json": hf_config(spec),
                 "generation_config.json": {"bos_token_id": 1, "eos_token_id": 2}}
    documents |= tokenizer_files(spec)
    files = {name: (json.dumps(doc, indent=2) + "\n").encode() for name, doc in documents.items()}
    if weights:
        files["model.safetensors"] = safetensors_bytes(seeded_weights(spec))
    return files


def files_digest(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + len(files[name]).to_bytes(8, "little"))
        digest.update(files[name])
    return digest.hexdigest()


def tiny_model_digest(spec: TinyModelSpec, *, weights: bool) -> str:
    return files_digest(model_files(spec, weights=weights))


def write_tiny_model(spec: TinyModelSpec, dest: Path, *, weights: bool) -> str:
    """Write the model directory at dest (replacing one there) and return its digest. The files
    go to a sibling staging directory renamed into place, so a crash leaves no half model."""
    files = model_files(spec, weights=weights)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.staging-", dir=dest.parent))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        staging.chmod(0o755)  # mkdtemp's 0700 would hide it from a container's other user
        if dest.exists():
            retired = dest.with_name(f".{dest.name}.retired-{os.getpid()}")
            dest.rename(retired)
            staging.rename(dest)
            shutil.rmtree(retired)
        else:
            staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files_digest(files)


# A name with any of these is another architecture (vision or audio towers, MoE, Llama 4)
# even where its family name matches below.
NOT_DENSE_TEXT = re.compile(r"-vl|vision|audio|omni|llama-?4|mixtral|pixtral|moe|-a\d+(\.\d+)?b\b")
FAMILIES: tuple[tuple[str, Architecture], ...] = (
    (r"^opt-", "OPTForCausalLM"),
    (r"^phi-(1|1_5|2)$", "PhiForCausalLM"),
    (r"^qwen(1\.5|2|2\.5)-", "Qwen2ForCausalLM"),  # Qwen1.5 checkpoints are Qwen2ForCausalLM too
    (r"^mistral-", "MistralForCausalLM"),
    (r"llama|^yi-", "LlamaForCausalLM"),  # Yi checkpoints are LlamaForCausalLM
)


def architecture_for(hf_model_name: str) -> Architecture | None:
    """The tiny architecture standing in for a catalogued model; None where none fits."""
    name = hf_model_name.lower().rsplit("/", 1)[-1]
    if NOT_DENSE_TEXT.search(name):
        return None
    return next((arch for pattern, arch in FAMILIES if re.search(pattern, name)), None)


# Token ids, not text: the check then involves no tokenizer behaviour. All below 10,000 and
# above the specials, so any vocab TinyModelSpec allows has them.
GREEDY_PROMPT_IDS: tuple[tuple[int, ...], ...] = (
    (2875, 8870, 9643, 9882, 9554),
    (7865, 9208, 9606, 8226, 3258, 6062, 1061, 6201),
    (7262, 4125, 6553, 1976, 1341, 7052, 8799, 5887, 3963, 2289, 1581, 2698),
    (617, 1808, 2946, 4596, 2821, 334, 4202, 4183, 2385, 2413, 4407, 2930, 3060, 7662, 5069, 2482),
    (5284, 8099, 7239, 4811, 6786, 254, 6722, 3065, 5371, 3636, 8457, 6287, 4702, 8109, 4953,
     2378, 4100, 4802, 5691, 8908),
)


def greedy_ids_script(model_dir: str, *, dtype: str = "float32", max_tokens: int = 16,
                      extra_llm_kwargs: dict | None = None) -> str:
    """A Python program that prints, one line per fixed prompt, the greedy output token ids of
    the tiny model's real weights. Only API stable from vLLM 0.8.5 through 0.10 (LLM,
    SamplingParams, dict prompts); the __main__ guard lets vLLM's spawned workers import it."""
    extra = dict(extra_llm_kwargs or {})
    try:  # the kwargs are written into the program as a literal: they must read back equal
        literal = ast.literal_eval(repr(extra)) == extra
    except (ValueError, SyntaxError):
        literal = False
    if not literal:
        raise ValueError(f"extra_llm_kwargs must be plain literals: {extra!r}")
    prompts = [{"prompt_token_ids": list(ids)} for ids in GREEDY_PROMPT_IDS]
    return textwrap.dedent(f"""\
        import os


        def main():
            # vLLM logs to stdout, with timestamps: the ids go to the original stdout and
            # everything else (vLLM's own logs included) to stderr, so stdout compares exactly
            ids_out = os.fdopen(os.dup(1), "w")
            os.dup2(2, 1)
            from vllm import LLM, SamplingParams

            llm = LLM(model={model_dir!r}, tokenizer={model_dir!r}, load_format="safetensors",
                      dtype={dtype!r}, seed=0, enforce_eager=True, max_model_len=512, **{extra!r})
            params = SamplingParams(temperature=0.0, max_tokens={int(max_tokens)}, ignore_eos=True)
            for output in llm.generate({prompts!r}, params):
                print(list(output.outputs[0].token_ids), file=ids_out, flush=True)


        if __name__ == "__main__":
            main()
        """)
