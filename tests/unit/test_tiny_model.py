"""The tiny stand-in model: byte-deterministic files, a well-formed safetensors file, tensor
names and shapes as transformers writes them (tests/fixtures/tiny_model/regenerate.py), the
catalogue's models mapped to architectures, and a greedy-ids script with no prompt text."""

import ast
import json
import math
import struct

import numpy as np
import pytest

from executor.parts.vllm.tiny_model import (GREEDY_PROMPT_IDS, TinyModelSpec, architecture_for,
                                      greedy_ids_script, hf_config, model_files,
                                      tiny_model_digest, weight_shapes, write_tiny_model)
from tests.conftest import REPO_ROOT

ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                 "OPTForCausalLM", "PhiForCausalLM")
EXPECTED = json.loads((REPO_ROOT / "tests/fixtures/tiny_model/expected_weights.json").read_text())
CATALOGUE = REPO_ROOT / "executor/parts/vllm/data/vllm_benchmark_mapping.json"
# The smallest vocab the spec allows: small files, fast tests.
SMALL = {"vocab_size": 10_001, "max_position_embeddings": 256}


def read_safetensors(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """A reader written from the format's description, checking its layout on the way."""
    (header_len,) = struct.unpack("<Q", data[:8])
    assert header_len % 8 == 0
    header = json.loads(data[8:8 + header_len])
    body = data[8 + header_len:]
    assert header.pop("__metadata__") == {"format": "pt"}
    arrays, expected_start = {}, 0
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
        start, end = entry["data_offsets"]
        assert entry["dtype"] == "F32"
        assert start == expected_start  # contiguous, no overlap, no gap
        assert end - start == math.prod(entry["shape"]) * 4
        arrays[name] = np.frombuffer(body[start:end], dtype="<f4").reshape(entry["shape"])
        expected_start = end
    assert expected_start == len(body)  # the data section is covered exactly
    return header, arrays


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_tensor_names_and_shapes_are_transformers_own(arch):
    shapes = weight_shapes(TinyModelSpec(architecture=arch))
    assert {name: list(shape) for name, shape in shapes.items()} == EXPECTED[arch]


def test_writing_twice_gives_the_same_bytes_and_digest(tmp_path):
    spec = TinyModelSpec(architecture="LlamaForCausalLM", **SMALL)
    first = write_tiny_model(spec, tmp_path / "a", weights=True)
    second = write_tiny_model(spec, tmp_path / "b", weights=True)
    assert first == second == tiny_model_digest(spec, weights=True)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert "model.safetensors" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_rewriting_replaces_the_directory_and_leaves_no_staging(tmp_path):
    spec = TinyModelSpec(architecture="OPTForCausalLM", **SMALL)
    write_tiny_model(spec, tmp_path / "m", weights=True)
    digest = write_tiny_model(spec, tmp_path / "m", weights=False)
    assert digest == tiny_model_digest(spec, weights=False)
    assert not (tmp_path / "m" / "model.safetensors").exists()  # dummy weights need no file
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


@pytest.mark.parametrize("change", [{"seed": 1}, {"hidden_size": 64}, {"num_layers": 3},
                                    {"architecture": "MistralForCausalLM"}])
def test_a_changed_spec_changes_the_digest(change):
    spec = TinyModelSpec(architecture="LlamaForCausalLM", **SMALL)
    assert tiny_model_digest(spec, weights=True) != tiny_model_digest(
        spec.model_copy(update=change), weights=True)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_safetensors_file_holds_every_tensor_with_a_fresh_init(arch):
    spec = TinyModelSpec(architecture=arch, **SMALL)
    header, arrays = read_safetensors(model_files(spec, weights=True)["model.safetensors"])
    assert {name: tuple(a.shape) for name, a in arrays.items()} == weight_shapes(spec)
    for name, array in arrays.items():
        if name.endswith(".bias"):
            assert not array.any()
        elif "norm" in name:
            assert (array == 1).all()
        else:  # not dummy's near-zero init: greedy outputs must depend on the prompt
            assert 0.015 < array.std() < 0.025 and abs(array.mean()) < 0.005


def test_configs_name_their_architecture_and_its_fields():
    configs = {arch: hf_config(TinyModelSpec(architecture=arch)) for arch in ARCHITECTURES}
    for arch, config in configs.items():
        assert config["architectures"] == [arch]
        assert (config["bos_token_id"], config["eos_token_id"], config["torch_dtype"]) == (1, 2, "float32")
    assert configs["OPTForCausalLM"]["ffn_dim"] == 384
    assert configs["OPTForCausalLM"]["do_layer_norm_before"] is True
    assert configs["PhiForCausalLM"]["partial_rotary_factor"] == 0.5
    assert configs["PhiForCausalLM"]["num_key_value_heads"] == 4  # vLLM's phi.py has no GQA
    assert configs["Qwen2ForCausalLM"]["use_sliding_window"] is False
    assert configs["LlamaForCausalLM"]["num_key_value_heads"] == 2


def test_the_tokenizer_has_exactly_vocab_size_words_and_the_specials_first():
    files = model_files(TinyModelSpec(architecture="LlamaForCausalLM"), weights=False)
    tokenizer = json.loads(files["tokenizer.json"])
    vocab = tokenizer["model"]["vocab"]
    assert tokenizer["model"]["type"] == "WordLevel" and len(vocab) == 32000
    assert sorted(vocab.values()) == list(range(32000))
    assert [vocab["<unk>"], vocab["<s>"], vocab["</s>"], vocab["w9999"]] == [0, 1, 2, 9999]
    assert [t["content"] for t in tokenizer["added_tokens"]] == ["<unk>", "<s>", "</s>"]
    config = json.loads(files["tokenizer_config.json"])
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_a_vocab_below_the_latency_benchmarks_ids_is_refused():
    with pytest.raises(ValueError):
        TinyModelSpec(architecture="LlamaForCausalLM", vocab_size=10_000)
    with pytest.raises(ValueError):
        TinyModelSpec(architecture="LlamaForCausalLM", num_heads=3)


def test_every_catalogue_model_maps_to_a_tiny_architecture_or_none():
    entries = json.loads(CATALOGUE.read_text()).values()
    mapped = {e["model"]: architecture_for(e["model"]) for e in entries if e.get("model")}
    assert set(mapped.values()) <= set(ARCHITECTURES) | {None}
    assert mapped["meta-llama/Meta-Llama-3-8B"] == "LlamaForCausalLM"
    assert mapped["Qwen/Qwen2.5-7B-Instruct"] == "Qwen2ForCausalLM"
    assert mapped["facebook/opt-125m"] == "OPTForCausalLM"
    assert mapped["microsoft/phi-1_5"] == "PhiForCausalLM"
    assert mapped["mistralai/Mistral-7B-Instruct-v0.3"] == "MistralForCausalLM"
    for other in ("Qwen/Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2-VL-7B", "Qwen/Qwen3-30B-A3B",
                  "meta-llama/Llama-4-Scout-17B-16E-Instruct", "mistralai/Mixtral-8x7B-v0.1",
                  "deepseek-ai/DeepSeek-R1", "google/gemma-2b"):
        assert mapped[other] is None, other


def test_the_greedy_script_compiles_and_prompts_with_token_ids_only():
    script = greedy_ids_script("/models/tiny", extra_llm_kwargs={"device": "cpu"})
    compile(script, "greedy_ids.py", "exec")
    assert "'device': 'cpu'" in script
    assert 'load_format="safetensors"' in script and "ignore_eos=True" in script
    generate = next(node for node in ast.walk(ast.parse(script)) if isinstance(node, ast.Call)
                    and getattr(node.func, "attr", None) == "generate")
    # The prompts are a literal list of token-id dicts: no text for a tokenizer to read.
    assert ast.literal_eval(generate.args[0]) == [{"prompt_token_ids": list(ids)}
                                                  for ids in GREEDY_PROMPT_IDS]
    for ids in GREEDY_PROMPT_IDS:
        assert 5 <= len(ids) <= 20 and all(3 <= i < 10_000 for i in ids)
    with pytest.raises(ValueError):
        greedy_ids_script("/m", extra_llm_kwargs={"x": object()})
