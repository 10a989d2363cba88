"""Read one number out of a benchmark's output, and know which direction is better.

Formats (FIELD_NOTES section 6):
  latency_json           benchmark_latency.py --output-json: avg_latency, latencies,
                         percentiles{"10".."99"} (seconds). Default: percentiles.50, the median
                         iteration, which one slow iteration cannot move; avg_latency when the
                         percentiles are absent.
  throughput_json        benchmark_throughput.py --output-json: elapsed_time, num_requests,
                         total_num_tokens, requests_per_second, tokens_per_second.
                         Default: tokens_per_second.
  serving_json           benchmark_serving.py --save-result: {mean,median,std,pNN}_{ttft,tpot,
                         itl,e2el}_ms, request_throughput, output_throughput, ... Default:
                         output_throughput. Most perf commands send every request at once
                         (request rate inf), where throughput is what a speedup moves; it counts
                         generated tokens, so a patch that merely ends requests early is not
                         rewarded the way request_throughput would reward it. With a fixed
                         --request-rate throughput is set by the arrival rate: pick a latency
                         field (median_tpot_ms, median_e2el_ms) with MetricSpec.field.
  prefix_caching_stdout  benchmark_prefix_caching.py prints "cost time X" (seconds) per run;
                         the last line is the timed run (earlier ones are warm-ups).
  vllm_bench_json        `vllm bench latency|throughput|serve`: the same field names as the
                         scripts; which one is recognised from the keys.
  json_path, regex       anything else; the direction must come from MetricSpec.lower_is_better.

Every failure is a MetricParseError that names what was missing and quotes the output.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from executor.core.task import MetricSpec

EXCERPT_CHARS = 240
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
RAW_LIST_MAX = 64  # per-request arrays (ttfts, itls, texts) stay in the log, not in results


class MetricParseError(ValueError):
    """The benchmark's output does not hold the metric; the message says what and shows it."""


class MetricValue(BaseModel):
    """One number from one benchmark run, with its unit and direction."""

    name: str = Field(description="Field the value came from, e.g. 'percentiles.50'.")
    value: float = Field(description="The metric value (finite).")
    unit: str = Field(description="Unit of the value: s, ms, tok/s, req/s; '' when unknown.")
    lower_is_better: bool = Field(description="True for times, False for rates.")
    raw: dict[str, Any] = Field(default_factory=dict,
                                description="The parsed output, long arrays left out.")


@dataclass(frozen=True)
class _Format:
    """A vLLM JSON format: which field to read by default and what each field means."""

    default: str
    fallback: str | None  # read when the default field is absent (older versions)
    fields: tuple[tuple[str, str, bool], ...]  # (full-match regex, unit, lower_is_better)


FORMATS: dict[str, _Format] = {
    "latency_json": _Format("percentiles.50", "avg_latency", (
        (r"avg_latency|percentiles\.\d+(\.\d+)?", "s", True),)),
    "throughput_json": _Format("tokens_per_second", None, (
        (r"tokens_per_second", "tok/s", False),
        (r"requests_per_second", "req/s", False),
        (r"elapsed_time", "s", True))),
    "serving_json": _Format("output_throughput", None, (
        (r"(mean|median|std|p\d+(\.\d+)?)_(ttft|tpot|itl|e2el)_ms", "ms", True),
        (r"(output|input|total_token)_throughput", "tok/s", False),
        (r"request_(throughput|goodput)", "req/s", False),
        (r"duration", "s", True))),
}


def parse_metric(spec: MetricSpec, output: bytes | str | None, stdout: bytes | str = ""
                 ) -> MetricValue:
    """The metric `spec` asks for, from the output file's content and/or the stdout text.

    `output` is the content of `spec.output_file` (None if the spec names no file); kinds that
    read a file fall back to stdout when the spec has no output_file.
    """
    stdout_text = _text(stdout)
    if spec.kind == "prefix_caching_stdout":
        return _prefix_caching(spec, stdout_text)
    if spec.output_file is None:
        text, source = stdout_text, "stdout"
    elif output is None:
        raise MetricParseError(f"{spec.kind}: the benchmark wrote no {spec.output_file}; "
                               f"stdout: {_excerpt(stdout_text)}")
    else:
        text, source = _text(output), spec.output_file
    if spec.kind == "regex":
        return _regex(spec, text, source)
    data = _json(text, spec.kind, source)
    if spec.kind == "json_path":
        if not spec.field:
            raise MetricParseError("json_path: MetricSpec.field (a dotted path) is required")
        lower = _required_direction(spec)
        value = _number(_lookup(data, spec.field, spec.kind, text), spec.field, spec.kind, text)
        return MetricValue(name=spec.field, value=value, unit="", lower_is_better=lower,
                           raw=_compact(data) if isinstance(data, dict) else {})
    kind = _vllm_bench_kind(data, text) if spec.kind == "vllm_bench_json" else spec.kind
    return _vllm_json(spec, FORMATS[kind], kind, data, text)


def _vllm_json(spec: MetricSpec, fmt: _Format, kind: str, data: Any, text: str) -> MetricValue:
    if not isinstance(data, dict):
        raise MetricParseError(f"{kind}: expected a JSON object, got {type(data).__name__}: "
                               f"{_excerpt(text)}")
    name = spec.field or fmt.default
    if spec.field is None and fmt.fallback and _missing(data, fmt.default):
        name = fmt.fallback
    unit, lower = next(((u, low) for pattern, u, low in fmt.fields
                        if re.fullmatch(pattern, name)), (None, None))
    if unit is None:
        known = ", ".join(pattern for pattern, _, _ in fmt.fields)
        raise MetricParseError(f"{kind}: '{name}' is not a metric of this format (known: "
                               f"{known}); use kind json_path for other fields")
    value = _number(_lookup(data, name, kind, text), name, kind, text)
    if value <= 0:  # a zero rate or duration means the benchmark did no work (all failed)
        raise MetricParseError(f"{kind}: {name} is {value}, the run did no measurable work: "
                               f"{_excerpt(text)}")
    direction = lower if spec.lower_is_better is None else spec.lower_is_better
    return MetricValue(name=name, value=value, unit=unit, lower_is_better=direction,
                       raw=_compact(data))


def _vllm_bench_kind(data: Any, text: str) -> str:
    """`vllm bench` writes the scripts' formats; tell them apart by their signature keys."""
    if isinstance(data, dict):
        if "avg_latency" in data:
            return "latency_json"
        if "request_throughput" in data:
            return "serving_json"
        if "tokens_per_second" in data or "requests_per_second" in data:
            return "throughput_json"
    raise MetricParseError("vllm_bench_json: none of avg_latency (latency), request_throughput "
                           "(serve), tokens_per_second (throughput) found: " + _excerpt(text))


def _prefix_caching(spec: MetricSpec, stdout: str) -> MetricValue:
    times = [float(t) for t in re.findall(rf"cost time:?\s*({NUMBER})", stdout)]
    if not times:
        raise MetricParseError("prefix_caching_stdout: no 'cost time X' line on stdout: "
                               + _excerpt(stdout))
    value = _finite(times[-1], "cost time", spec.kind, stdout)
    lower = True if spec.lower_is_better is None else spec.lower_is_better
    return MetricValue(name="cost_time", value=value, unit="s", lower_is_better=lower,
                       raw={"cost_times": times[-RAW_LIST_MAX:]})


def _regex(spec: MetricSpec, text: str, source: str) -> MetricValue:
    if not spec.regex:
        raise MetricParseError("regex: MetricSpec.regex (a pattern with one group) is required")
    try:
        pattern = re.compile(spec.regex, re.MULTILINE)
    except re.error as exc:
        raise MetricParseError(f"regex: invalid pattern {spec.regex!r}: {exc}") from exc
    if pattern.groups != 1:
        raise MetricParseError(f"regex: pattern {spec.regex!r} must have exactly one group, "
                               f"has {pattern.groups}")
    lower = _required_direction(spec)
    matches = pattern.findall(text)
    if not matches:
        raise MetricParseError(f"regex: {spec.regex!r} matched nothing in {source}: "
                               + _excerpt(text))
    name = spec.field or "regex"
    try:
        value = float(matches[-1])  # the last match: earlier ones are usually warm-ups
    except ValueError:
        raise MetricParseError(f"regex: captured {matches[-1]!r}, not a number") from None
    return MetricValue(name=name, value=_finite(value, name, "regex", text), unit="",
                       lower_is_better=lower, raw={"matches": matches[-RAW_LIST_MAX:]})


def _required_direction(spec: MetricSpec) -> bool:
    if spec.lower_is_better is None:
        raise MetricParseError(f"{spec.kind}: MetricSpec.lower_is_better is required (the "
                               f"parser cannot know whether smaller values are better)")
    return spec.lower_is_better


def _lookup(data: Any, path: str, kind: str, text: str) -> Any:
    """Follow a dotted path ('percentiles.50', 'runs.0.latency', 'a[1].b').

    Keys may themselves hold dots (serving's 'p99.9_ttft_ms'): at each level the longest run
    of path segments that is a key wins.
    """
    parts = [p for p in re.split(r"\.|\[(\d+)\]", path) if p]
    node, i = data, 0
    while i < len(parts):
        if isinstance(node, list):
            try:
                node, i = node[int(parts[i])], i + 1
                continue
            except (ValueError, IndexError):
                raise MetricParseError(f"{kind}: '{path}': '{parts[i]}' is not an index of a "
                                       f"list of {len(node)}: {_excerpt(text)}") from None
        if not isinstance(node, dict):
            raise MetricParseError(f"{kind}: '{path}': '{'.'.join(parts[:i])}' is a "
                                   f"{type(node).__name__}, not an object: {_excerpt(text)}")
        end = next((j for j in range(len(parts), i, -1) if ".".join(parts[i:j]) in node), None)
        if end is None:
            raise MetricParseError(f"{kind}: no '{parts[i]}' (for '{path}'); keys: "
                                   f"{', '.join(map(str, node))[:EXCERPT_CHARS]}")
        node, i = node[".".join(parts[i:end])], end
    return node


def _missing(data: dict, path: str) -> bool:
    try:
        _lookup(data, path, "", "")
    except MetricParseError:
        return True
    return False


def _number(value: Any, name: str, kind: str, text: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricParseError(f"{kind}: {name} is {type(value).__name__} {str(value)[:80]!r}, "
                               f"not a number: {_excerpt(text)}")
    return _finite(float(value), name, kind, text)


def _finite(value: float, name: str, kind: str, text: str) -> float:
    if not math.isfinite(value):
        raise MetricParseError(f"{kind}: {name} is {value}: {_excerpt(text)}")
    return value


def _json(text: str, kind: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MetricParseError(f"{kind}: {source} is not JSON ({exc.msg} at line {exc.lineno}): "
                               f"{_excerpt(text)}") from None


def _compact(data: dict) -> dict:
    """Scalars and nested objects; numeric lists only when short (results.json stays small)."""
    out: dict = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out[key] = _compact(value)
        elif isinstance(value, list):
            if len(value) <= RAW_LIST_MAX and all(isinstance(v, (int, float)) for v in value):
                out[key] = value
        else:
            out[key] = value
    return out


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


def _excerpt(text: str) -> str:
    """A short one-line view of the output for error messages: its start and its end."""
    flat = " ".join(text.split())
    if not flat:
        return "(empty output)"
    if len(flat) <= EXCERPT_CHARS:
        return repr(flat)
    half = EXCERPT_CHARS // 2
    return repr(flat[:half] + " ... " + flat[-half:])
