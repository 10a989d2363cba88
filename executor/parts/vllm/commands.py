"""ISO-Bench's perf commands, made runnable by our bench runner or marked with why they cannot be.

The source commands were written by hand over two years of vLLM: engine flags passed to the
serving client (which rejects them), datasets that are not shipped, JSON output never asked
for, scripts that later became stubs. Each rule below fixes one such class and says so in
`notes`; what cannot be fixed becomes `not_runnable` with its reason, decided here rather than
an hour into a run. Era-dependent choices follow the commit's date; with no date they assume
the common case (mid-2024 or later) and record that in `assumptions`.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from typing import Literal

from pydantic import BaseModel, Field

from executor.parts.vllm.gpu_fit import single_gpu_problem
from executor.core.task import MetricSpec
from executor.parts.vllm import facts

Kind = Literal["latency", "throughput", "serving", "prefix_caching"]
OUTPUT_FILE = "/tmp/isobench_bench.json"
DATASETS_DIR = "/opt/isobench/datasets"
SHAREGPT = "ShareGPT_V3_unfiltered_cleaned_split.json"
SERVER_PORT = 8000
READY_URL = f"http://localhost:{SERVER_PORT}/v1/models"
DEFAULT_SCRIPT_MODEL = "facebook/opt-125m"  # benchmark_latency/throughput's own default
SCRIPTS: dict[str, Kind] = {
    "benchmark_latency.py": "latency", "benchmark_throughput.py": "throughput",
    "benchmark_serving.py": "serving", "benchmark_prefix_caching.py": "prefix_caching",
}
BENCH_SUBCOMMANDS: dict[str, Kind] = {"latency": "latency", "throughput": "throughput",
                                      "serve": "serving"}
FLAG_ALIASES = {"-tp": "--tensor-parallel-size", "--input_len": "--input-len",
                "--batch_size": "--batch-size", "--output_len": "--output-len"}
BOOLEAN_FLAGS = {
    "--enforce-eager", "--enable-prefix-caching", "--no-enable-prefix-caching",
    "--trust-remote-code", "--ignore-eos", "--use-v2-block-manager", "--async-engine",
    "--save-result", "--disable-tqdm", "--enable-chunked-prefill", "--multi-step",
    "--disable-log-stats", "--disable-log-requests",
}
# benchmark_serving.py / `vllm bench serve` options (the client side).
SERVING_CLIENT_FLAGS = {
    "--backend", "--base-url", "--host", "--port", "--endpoint", "--dataset", "--dataset-name",
    "--dataset-path", "--model", "--tokenizer", "--best-of", "--use-beam-search",
    "--num-prompts", "--sharegpt-output-len", "--random-input-len", "--random-output-len",
    "--random-range-ratio", "--random-prefix-len", "--request-rate", "--burstiness",
    "--max-concurrency", "--seed", "--trust-remote-code", "--disable-tqdm", "--profile",
    "--save-result", "--result-dir", "--result-filename", "--ignore-eos", "--served-model-name",
    "--hf-split", "--hf-subset", "--tokenizer-mode", "--percentile-metrics",
    "--metric-percentiles", "--goodput", "--logprobs", "--sonnet-input-len",
    "--sonnet-output-len", "--sonnet-prefix-len",
}
# Engine options ISO-Bench's commands put on the client; they belong to the server.
SERVER_FLAGS = {
    "--dtype", "--enable-prefix-caching", "--no-enable-prefix-caching", "--tensor-parallel-size",
    "--use-v2-block-manager", "--quantization", "--max-model-len", "--enable-chunked-prefill",
    "--max-num-batched-tokens", "--guided-decoding-backend", "--max-num-seqs",
    "--gpu-memory-utilization", "--enforce-eager", "--speculative-model",
    "--num-speculative-tokens", "--kv-cache-dtype", "--block-size", "--load-format",
    "--trust-remote-code", "--served-model-name", "--multi-step", "--num-scheduler-steps",
}
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]+$")


class BenchCommand(BaseModel):
    """A catalogue entry's benchmark, normalised for our runner, or why it cannot run."""

    kind: Kind | None = Field(default=None, description="Which vLLM benchmark this is.")
    command: str | None = Field(default=None, description="Client/benchmark command, in repo.")
    server_command: str | None = Field(default=None, description="Server start (serving).")
    server_ready_url: str | None = Field(default=None, description="Readiness URL (serving).")
    metric: MetricSpec | None = Field(default=None, description="How to read the result.")
    model: str | None = Field(default=None, description="Model the command runs.")
    required_files: list[str] = Field(default_factory=list,
                                      description="Files to mount (datasets), container paths.")
    not_runnable: str | None = Field(default=None, description="Why it cannot run, if so.")
    notes: list[str] = Field(default_factory=list, description="Each change made, and why.")
    assumptions: list[str] = Field(default_factory=list,
                                   description="Era guesses made for lack of a commit date.")

    @property
    def runnable(self) -> bool:
        return self.not_runnable is None


class _Era:
    """Answers 'does the commit's era have X?', recording a guess when the date is unknown."""

    def __init__(self, day: dt.date | None, stubs: bool | None, assumptions: list[str]):
        self.day, self.stubs, self.assumptions = day, stubs, assumptions

    def since(self, start: dt.date, what: str, default: bool = True) -> bool:
        if self.day is None:
            self.assumptions.append(f"date unknown: assumed {what} ({'yes' if default else 'no'};"
                                    f" available from {start})")
            return default
        return self.day >= start

    def scripts_stubbed(self) -> bool:
        if self.stubs is not None:
            return self.stubs
        return self.since(facts.SCRIPTS_STUBBED_FROM, "benchmark scripts are stubs",
                          default=False)


def _parse_args(tokens: list[str]) -> list[tuple[str, str | None]]:
    args: list[tuple[str, str | None]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("-"):
            args.append(("", token))  # stray positional; rejected by the caller
            i += 1
            continue
        flag, eq, value = token.partition("=")
        flag = FLAG_ALIASES.get(flag, flag)
        if eq:
            args.append((flag, value))
        elif (flag not in BOOLEAN_FLAGS and i + 1 < len(tokens)
              and not tokens[i + 1].startswith("--")):
            args.append((flag, tokens[i + 1]))
            i += 1
        else:
            args.append((flag, None))
        i += 1
    return args


def _render(args: list[tuple[str, str | None]]) -> str:
    return " ".join(flag if value is None else f"{flag} {shlex.quote(value)}"
                    for flag, value in args)


def _get(args: list[tuple[str, str | None]], flag: str) -> str | None:
    return next((value for f, value in args if f == flag), None)


def _without(args: list[tuple[str, str | None]], *flags: str) -> list[tuple[str, str | None]]:
    return [(f, v) for f, v in args if f not in flags]


def _refuse(reason: str, **known) -> BenchCommand:
    return BenchCommand(not_runnable=reason, **known)


def _split_tool(tokens: list[str], notes: list[str]) -> tuple[Kind | None, str, list[str]]:
    """(kind, how it was invoked: 'script' | 'cli' | reason, remaining tokens)."""
    if len(tokens) >= 2 and re.fullmatch(r"python3?", tokens[0]) and tokens[1].endswith(".py"):
        path, name = tokens[1], tokens[1].rsplit("/", 1)[-1]
        if name not in SCRIPTS:
            return None, f"{name} is not a vLLM benchmark script with a known output", []
        if path != f"benchmarks/{name}":
            notes.append(f"script path {path} rewritten to benchmarks/{name}")
        return SCRIPTS[name], "script", tokens[2:]
    if tokens[:2] == ["vllm", "bench"] and len(tokens) > 2 and tokens[2] in BENCH_SUBCOMMANDS:
        return BENCH_SUBCOMMANDS[tokens[2]], "cli", tokens[3:]
    return None, f"unrecognised benchmark invocation {' '.join(tokens[:3])!r}", []


def normalise_command(perf_command: str | None, model: str | None, mode: str | None,
                      day: dt.date | None, *, scripts_stubbed: bool | None = None,
                      excluded: str | None = None) -> BenchCommand:
    """Normalise one source command; see the module docstring for the rules."""
    if excluded:
        return _refuse(excluded)
    if not perf_command:
        return _refuse("no perf command in the source mapping")
    if mode is None:
        return _refuse("benchmark mode is null in the source mapping (ISO-Bench could not "
                       "classify the workload)")
    notes: list[str] = []
    assumptions: list[str] = []
    era = _Era(day, scripts_stubbed, assumptions)
    try:
        tokens = shlex.split(perf_command)
    except ValueError as exc:
        return _refuse(f"perf command does not parse: {exc}")
    env: list[str] = []
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", tokens[0]):
        env.append(tokens.pop(0))
    kind, how, rest = _split_tool(tokens, notes)
    if kind is None:
        return _refuse(how)
    expected = {"serving": {"serving"}, "prefix_caching": {"prefix_caching"},
                "standalone": {"latency", "throughput"}}.get(mode, {kind})
    if kind not in expected:
        notes.append(f"mapping says {mode}, the command is a {kind} benchmark: the command wins")
    args = _parse_args(rest)
    if positional := [v for f, v in args if f == ""]:
        return _refuse(f"stray argument {positional[0]!r} in the perf command")
    if placeholders := [v for _, v in args if v and _PLACEHOLDER.match(v)]:
        return _refuse(f"perf command holds unfilled placeholders ({', '.join(placeholders)})")
    tp = _get(args, "--tensor-parallel-size")
    if tp and tp.isdigit() and int(tp) > 1:
        return _refuse(f"tensor parallel {tp}: needs {tp} GPUs, the sandbox has one")

    command_model = _get(args, "--model")
    chosen = model if model and model != "unknown" else command_model
    if chosen is None and kind in ("latency", "throughput"):
        chosen = DEFAULT_SCRIPT_MODEL
        notes.append(f"no model given: the script's own default {chosen}")
    if chosen is None:
        return _refuse("no model in the mapping or the command")
    if command_model and command_model != chosen:
        notes.append(f"command named {command_model}; the catalogue's model {chosen} is used")
    problem, gpu_note = single_gpu_problem(chosen)
    if problem:
        return _refuse(problem)
    if gpu_note:
        notes.append(gpu_note)
    args = [("--model", chosen)] + _without(args, "--model", "--tensor-parallel-size")
    if tp == "1":
        notes.append("--tensor-parallel-size 1 dropped (the default)")

    known = dict(kind=kind, model=chosen, notes=notes, assumptions=assumptions)
    if kind == "serving":
        return _serving(args, env, how, era, known)
    if kind == "prefix_caching":
        command = " ".join(env + ["python", "benchmarks/benchmark_prefix_caching.py",
                                  _render(args)])
        return BenchCommand(command=command, metric=MetricSpec(
            kind="prefix_caching_stdout", output_file=None), **known)
    return _offline(kind, args, env, how, era, known)


def _tool(kind: Kind, how: str, era: _Era, notes: list[str]) -> list[str]:
    """Script or `vllm bench`, whichever the commit's era has."""
    script = ["python", f"benchmarks/benchmark_{'serving' if kind == 'serving' else kind}.py"]
    cli = ["vllm", "bench", {"serving": "serve"}.get(kind, kind)]
    if how == "script" and era.scripts_stubbed():
        notes.append("benchmark scripts are stubs in this era: `vllm bench` instead")
        return cli
    if how == "cli" and not era.since(facts.VLLM_BENCH_CLI_FROM, "`vllm bench` exists"):
        notes.append("`vllm bench` does not exist yet in this era: the script instead")
        return script
    return cli if how == "cli" else script


def _offline(kind: Kind, args, env: list[str], how: str, era: _Era, known: dict
             ) -> BenchCommand:
    notes = known["notes"]
    if kind == "throughput" and not (_get(args, "--dataset") or _get(args, "--dataset-path")
                                     or _get(args, "--input-len")):
        return _refuse("throughput benchmark with neither a dataset nor --input-len",
                       **{k: known[k] for k in ("kind", "model")})
    if _get(args, "--load-format") is None:
        if era.since(facts.LOAD_FORMAT_DUMMY_FROM, "--load-format dummy is accepted"):
            args = args + [("--load-format", "dummy")]
            notes.append("--load-format dummy: random weights, no download; timing unchanged")
    metric_kind = "latency_json" if kind == "latency" else "throughput_json"
    if era.since(facts.LATENCY_OUTPUT_JSON_FROM, "--output-json is accepted"):
        args = _without(args, "--output-json") + [("--output-json", OUTPUT_FILE)]
        metric = MetricSpec(kind=metric_kind, output_file=OUTPUT_FILE)
    else:
        # before --output-json the scripts only print; read the printed number instead
        pattern = (r"Avg latency: ([0-9.]+) seconds" if kind == "latency"
                   else r"Throughput: ([0-9.]+) requests/s")
        metric = MetricSpec(kind="regex", output_file=None, regex=pattern,
                            lower_is_better=kind == "latency")
        notes.append("no --output-json in this era: the metric is read from stdout")
    command = " ".join(env + _tool(kind, how, era, notes) + [_render(args)])
    return BenchCommand(command=command, metric=metric, **known)


def _serving(args, env: list[str], how: str, era: _Era, known: dict) -> BenchCommand:
    notes, model = known["notes"], known["model"]
    server_args: list[tuple[str, str | None]] = [("--model", model), ("--port", str(SERVER_PORT))]
    client: list[tuple[str, str | None]] = []
    for flag, value in args:
        if flag in SERVER_FLAGS:
            server_args.append((flag, value))
            if flag in SERVING_CLIENT_FLAGS:
                client.append((flag, value))
            else:
                notes.append(f"{flag} moved to the server (benchmark_serving.py rejects it)")
        elif flag in SERVING_CLIENT_FLAGS:
            client.append((flag, value))
        elif flag in ("--input-len", "--output-len"):
            client.append((f"--random-{flag[2:]}", value))
            notes.append(f"{flag} {value} -> --random-{flag[2:]} (a serving client option)")
        else:
            return _refuse(f"{flag} is an option of neither benchmark_serving.py nor the "
                           f"server", kind="serving", model=model)
    if _get(server_args, "--load-format") is None:
        server_args.append(("--load-format", "dummy"))
        notes.append("server --load-format dummy: random weights, no download")

    required: list[str] = []
    dataset_name = _get(client, "--dataset-name")
    dataset_path = _get(client, "--dataset-path") or _get(client, "--dataset")
    has_random_lens = _get(client, "--random-input-len") is not None
    if dataset_name == "random" or (dataset_name is None and has_random_lens):
        if not era.since(facts.RANDOM_DATASET_FROM, "--dataset-name random exists"):
            return _refuse("random dataset requested but this era has none",
                           kind="serving", model=model)
        client = _without(client, "--dataset-name") + [("--dataset-name", "random")]
    elif dataset_name in (None, "sharegpt") and (dataset_path is None
                                                 or dataset_path.endswith(SHAREGPT)):
        path = f"{DATASETS_DIR}/{SHAREGPT}"
        required.append(path)
        client = _without(client, "--dataset-name", "--dataset-path", "--dataset")
        if era.since(facts.DATASET_NAME_FROM, "--dataset-name/--dataset-path exist"):
            client += [("--dataset-name", "sharegpt"), ("--dataset-path", path)]
        else:
            client += [("--dataset", path)]
        notes.append(f"ShareGPT read from {path} (mount it; the scripts do not download it)")
    elif dataset_name == "hf":
        notes.append(f"Hugging Face dataset {dataset_path} is fetched at run time")
    if _get(client, "--num-prompts") is None:
        client.append(("--num-prompts", "1000"))
        notes.append("--num-prompts 1000 (the script's default) made explicit")

    client = _without(client, "--save-result", "--result-dir", "--result-filename")
    client = _without(client, "--port") + [("--port", str(SERVER_PORT))]
    tool = _tool("serving", how, era, notes)
    if era.since(facts.RESULT_FILENAME_FROM, "--result-filename exists"):
        client += [("--save-result", None), ("--result-dir", "/tmp"),
                   ("--result-filename", OUTPUT_FILE.rsplit("/", 1)[-1])]
        command = " ".join(env + tool + [_render(client)])
    else:
        # older scripts name the file themselves (<backend>-<rate>qps-<model>-<time>.json)
        client += [("--save-result", None)]
        command = (" ".join(env + tool + [_render(client)]) +
                   f' && mv "$(ls -t *qps-*.json | head -n1)" {OUTPUT_FILE}')
    server = " ".join(env + ["python", "-m", "vllm.entrypoints.openai.api_server",
                             _render(server_args)])
    return BenchCommand(command=command, server_command=server, server_ready_url=READY_URL,
                        metric=MetricSpec(kind="serving_json", output_file=OUTPUT_FILE),
                        required_files=required, **known)
