"""Metric parsers on fixture outputs written from vLLM's documented formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from executor.parts.bench.metrics import MetricParseError, parse_metric
from executor.core.task import MetricSpec

FIXTURES = Path(__file__).parent / "fixtures" / "metrics"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def spec(kind: str, **fields) -> MetricSpec:
    return MetricSpec(kind=kind, **fields)


# ----------------------------------------------------------------------------- vLLM JSON


def test_latency_defaults_to_the_median_iteration():
    m = parse_metric(spec("latency_json"), fixture("latency.json"))
    assert (m.name, m.value, m.unit, m.lower_is_better) == ("percentiles.50", 1.4209, "s", True)
    assert m.raw["avg_latency"] == 1.4213 and len(m.raw["latencies"]) == 15


@pytest.mark.parametrize("field, value", [("avg_latency", 1.4213), ("percentiles.99", 1.43782)])
def test_latency_field_is_selectable(field, value):
    m = parse_metric(spec("latency_json", field=field), fixture("latency.json"))
    assert (m.name, m.value, m.lower_is_better) == (field, value, True)


def test_latency_without_percentiles_falls_back_to_the_average():
    m = parse_metric(spec("latency_json"), fixture("latency_old.json"))
    assert (m.name, m.value) == ("avg_latency", 2.0517)


def test_throughput_defaults_to_tokens_per_second_higher_is_better():
    m = parse_metric(spec("throughput_json"), fixture("throughput.json"))
    assert (m.name, m.value, m.unit, m.lower_is_better) == \
        ("tokens_per_second", 26105.32, "tok/s", False)
    elapsed = parse_metric(spec("throughput_json", field="elapsed_time"),
                           fixture("throughput.json"))
    assert (elapsed.value, elapsed.unit, elapsed.lower_is_better) == (42.137, "s", True)


def test_throughput_rejects_a_field_that_is_not_a_metric():
    with pytest.raises(MetricParseError, match="num_requests.*not a metric.*json_path"):
        parse_metric(spec("throughput_json", field="num_requests"), fixture("throughput.json"))


@pytest.mark.parametrize("field, value, unit, lower", [
    (None, 159.34, "tok/s", False),                 # default: output_throughput
    ("request_throughput", 1.2448, "req/s", False),
    ("total_token_throughput", 413.28, "tok/s", False),
    ("median_tpot_ms", 11.7, "ms", True),
    ("p99_ttft_ms", 45.0, "ms", True),
    ("p99.9_e2el_ms", 1561.0, "ms", True),          # a key with a dot in it
])
def test_serving_fields_know_their_direction(field, value, unit, lower):
    m = parse_metric(spec("serving_json", field=field), fixture("serving.json"))
    assert (m.value, m.unit, m.lower_is_better) == (value, unit, lower)
    assert m.name == (field or "output_throughput")


def test_serving_raw_keeps_scalars_and_drops_long_per_request_arrays():
    data = json.loads(fixture("serving.json"))
    data["ttfts"] = [0.04] * 500
    m = parse_metric(spec("serving_json"), json.dumps(data))
    assert m.raw["completed"] == 3 and m.raw["median_ttft_ms"] == 43.3
    assert "ttfts" not in m.raw and "generated_texts" not in m.raw
    assert m.raw["input_lens"] == [201, 188, 223]


def test_old_serving_format_reads_and_names_a_missing_field():
    m = parse_metric(spec("serving_json"), fixture("serving_old.json"))
    assert m.value == 58.8
    with pytest.raises(MetricParseError, match="no 'median_e2el_ms'.*keys: backend"):
        parse_metric(spec("serving_json", field="median_e2el_ms"), fixture("serving_old.json"))


def test_zero_throughput_means_the_run_did_no_work():
    data = json.loads(fixture("serving.json")) | {"completed": 0, "output_throughput": 0.0}
    with pytest.raises(MetricParseError, match="output_throughput is 0.0"):
        parse_metric(spec("serving_json"), json.dumps(data))


@pytest.mark.parametrize("name, kind_value", [
    ("latency.json", ("percentiles.50", True)),
    ("throughput.json", ("tokens_per_second", False)),
    ("serving.json", ("output_throughput", False)),
])
def test_vllm_bench_cli_json_is_recognised_by_its_keys(name, kind_value):
    m = parse_metric(spec("vllm_bench_json"), fixture(name))
    assert (m.name, m.lower_is_better) == kind_value


def test_vllm_bench_unknown_shape_is_a_clear_error():
    with pytest.raises(MetricParseError, match='none of avg_latency.*"hello"'):
        parse_metric(spec("vllm_bench_json"), b'{"hello": 1}')


def test_spec_direction_overrides_the_parser():
    m = parse_metric(spec("throughput_json", lower_is_better=True), fixture("throughput.json"))
    assert m.lower_is_better is True


# ------------------------------------------------------------------------ stdout formats


def test_prefix_caching_takes_the_last_cost_time_line():
    m = parse_metric(spec("prefix_caching_stdout"), None,
                     fixture("prefix_caching_stdout.txt").decode())
    assert (m.name, m.value, m.unit, m.lower_is_better) == \
        ("cost_time", 1.6209278106689453, "s", True)
    assert m.raw["cost_times"] == [3.6051995754241943, 1.6209278106689453]


def test_prefix_caching_without_the_line_quotes_stdout():
    with pytest.raises(MetricParseError, match="no 'cost time X' line.*Traceback"):
        parse_metric(spec("prefix_caching_stdout"), None, "Traceback (most recent call last):")
    with pytest.raises(MetricParseError, match="no 'cost time X' line"):
        parse_metric(spec("prefix_caching_stdout"), None, "cost time estimate: unknown")


# ----------------------------------------------------------------------- generic metrics


def test_json_path_with_list_indices_and_required_direction():
    output = b'{"runs": [{"ms": 3.5}, {"ms": 2.25}], "meta": {"best": {"ms": 2.0}}}'
    for path in ("runs.1.ms", "runs[1].ms"):
        m = parse_metric(spec("json_path", field=path, lower_is_better=True), output)
        assert (m.name, m.value, m.unit, m.lower_is_better) == (path, 2.25, "", True)
    m = parse_metric(spec("json_path", field="meta.best.ms", lower_is_better=False), output)
    assert (m.value, m.lower_is_better) == (2.0, False)


@pytest.mark.parametrize("field, message", [
    ("runs.5.ms", "'5' is not an index of a list of 2"),
    ("runs.0.ms.x", "'runs.0.ms' is a float, not an object"),
    ("runs.0.name", "no 'name'"),
    ("label", "label is str 'fast', not a number"),
])
def test_json_path_errors_name_what_is_missing(field, message):
    output = b'{"runs": [{"ms": 3.5}, {"ms": 2.25}], "label": "fast"}'
    with pytest.raises(MetricParseError, match=message):
        parse_metric(spec("json_path", field=field, lower_is_better=True), output)


def test_generic_kinds_require_a_direction():
    with pytest.raises(MetricParseError, match="lower_is_better is required"):
        parse_metric(spec("json_path", field="a"), b'{"a": 1}')
    with pytest.raises(MetricParseError, match="lower_is_better is required"):
        parse_metric(spec("regex", regex=r"t=(\d+)", output_file=None), None, "t=1")


def test_regex_reads_stdout_and_takes_the_last_match():
    stdout = "warm-up: 12.5 ms\nrun: 10.25 ms\nrun: 10.0 ms\n"
    m = parse_metric(spec("regex", regex=r"^run: ([\d.]+) ms$", output_file=None,
                          lower_is_better=True, field="run_ms"), None, stdout)
    assert (m.name, m.value, m.lower_is_better) == ("run_ms", 10.0, True)
    assert m.raw["matches"] == ["10.25", "10.0"]


@pytest.mark.parametrize("pattern, message", [
    (r"run: [\d.]+", "exactly one group, has 0"),
    (r"(run): ([\d.]+)", "exactly one group, has 2"),
    (r"nothing (\d+)", "matched nothing in stdout"),
    (r"run: (\w+)", "captured 'fast', not a number"),
    (r"run: ([\d.]+", "invalid pattern"),
])
def test_regex_errors(pattern, message):
    with pytest.raises(MetricParseError, match=message):
        parse_metric(spec("regex", regex=pattern, output_file=None, lower_is_better=True),
                     None, "run: fast\n")


# ------------------------------------------------------------------- files and failures


def test_missing_output_file_is_named_with_the_stdout_tail():
    with pytest.raises(MetricParseError, match="wrote no /tmp/isobench_bench.json.*CUDA out of"):
        parse_metric(spec("latency_json"), None, "RuntimeError: CUDA out of memory")


def test_output_file_none_reads_json_from_stdout():
    m = parse_metric(spec("throughput_json", output_file=None), None, fixture("throughput.json"))
    assert m.value == 26105.32


def test_invalid_json_and_nan_are_parse_errors_not_key_errors():
    with pytest.raises(MetricParseError, match="is not JSON.*Killed"):
        parse_metric(spec("latency_json"), b"Killed")
    with pytest.raises(MetricParseError, match="avg_latency is nan"):
        parse_metric(spec("latency_json", field="avg_latency"), b'{"avg_latency": NaN}')
    with pytest.raises(MetricParseError, match="expected a JSON object, got list"):
        parse_metric(spec("latency_json"), b"[1, 2]")
    assert issubclass(MetricParseError, ValueError)


def test_long_output_excerpt_is_short_and_shows_both_ends():
    noise = "x" * 10_000
    with pytest.raises(MetricParseError) as info:
        parse_metric(spec("latency_json"), f"BEGIN {noise} END".encode())
    assert len(str(info.value)) < 400
    assert "BEGIN" in str(info.value) and "END" in str(info.value)
