"""Price table: exact costs where prices are known, None (never a guess) where they are not."""

import json

import pytest

from executor.core.journal import Usage
from executor.core.pricing import DEFAULT_PRICES, ModelPrice, PriceTable, cost, with_cost

TABLE = PriceTable(models={
    "oai": ModelPrice(input=2.0, cached_input=0.5, output=8.0),
    "claude": ModelPrice(input=3.0, cached_input=0.3, cache_write=3.75, output=15.0,
                         cached_in_input=False),
    "no-cache-price": ModelPrice(input=1.0, output=2.0),
})


def test_openai_style_cached_tokens_are_part_of_input():
    usage = Usage(input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=100_000,
                  reasoning_tokens=50_000)
    # 600k uncached * 2 + 400k cached * 0.5 + 100k output * 8 (reasoning is inside output)
    assert cost(usage, "oai", TABLE) == pytest.approx(1.2 + 0.2 + 0.8)


def test_anthropic_style_cache_reads_and_writes_are_beside_input():
    usage = Usage(input_tokens=100_000, cached_input_tokens=1_000_000,
                  cache_creation_input_tokens=200_000, output_tokens=10_000)
    assert cost(usage, "claude", TABLE) == pytest.approx(0.3 + 0.3 + 0.75 + 0.15)


def test_unknown_model_costs_none():
    assert cost(Usage(input_tokens=10, output_tokens=10), "mystery-model", TABLE) is None


def test_unpriced_kind_of_token_makes_the_whole_cost_unknown():
    assert cost(Usage(input_tokens=10, output_tokens=1), "no-cache-price", TABLE) == \
        pytest.approx((10 * 1.0 + 2.0) / 1e6)
    assert cost(Usage(input_tokens=10, cached_input_tokens=5), "no-cache-price", TABLE) is None
    assert cost(Usage(input_tokens=10, cache_creation_input_tokens=5), "oai", TABLE) is None


def test_contradictory_counts_cost_none():
    assert cost(Usage(input_tokens=10, cached_input_tokens=20), "oai", TABLE) is None


def test_provider_prefix_is_the_same_model_but_snapshots_are_not():
    assert TABLE.price("openai/oai") is TABLE.models["oai"]
    assert DEFAULT_PRICES.price("gpt-4o-2024-05-13") is None  # priced differently from gpt-4o


def test_defaults_cover_common_openai_models_and_say_where_they_came_from():
    assert {"gpt-5", "gpt-5-mini", "gpt-4.1", "gpt-4o", "o3"} <= set(DEFAULT_PRICES.models)
    assert "verify" in DEFAULT_PRICES.source
    assert cost(Usage(input_tokens=1_000_000, output_tokens=1_000_000), "gpt-5") == \
        pytest.approx(11.25)


def test_zero_usage_costs_zero_not_none():
    assert cost(Usage(), "oai", TABLE) == 0.0


def test_with_cost_fills_the_usage_copy():
    usage = Usage(input_tokens=1_000_000)
    priced = with_cost(usage, "oai", TABLE)
    assert priced.cost_usd == pytest.approx(2.0) and usage.cost_usd is None
    assert with_cost(usage, "mystery", TABLE).cost_usd is None


def test_load_toml_and_json_tables(tmp_path):
    toml = tmp_path / "prices.toml"
    toml.write_text('source = "our contract, 2026-11"\n'
                    '[models."gpt-5"]\ninput = 1.0\ncached_input = 0.1\noutput = 9.0\n'
                    '[models."local-llama"]\ninput = 0.0\noutput = 0.0\n')
    table = PriceTable.load(toml)
    assert table.source == "our contract, 2026-11"
    assert cost(Usage(input_tokens=1_000_000), "gpt-5", table) == pytest.approx(1.0)
    assert cost(Usage(input_tokens=5, output_tokens=5), "local-llama", table) == 0.0

    merged = DEFAULT_PRICES.merged(table)
    assert merged.price("gpt-5").output == 9.0 and merged.price("o3") is not None

    js = tmp_path / "prices.json"
    js.write_text(json.dumps({"models": {"m": {"input": 1, "output": 2}}}))
    assert PriceTable.load(js).price("m").output == 2


def test_table_rejects_typos(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": {"m": {"input": 1, "ouptut": 2}}}))
    with pytest.raises(ValueError):
        PriceTable.load(bad)
