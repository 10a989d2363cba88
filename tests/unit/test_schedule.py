from collections import Counter

import pytest

from executor.parts.bench.schedule import interleaved_schedule


def test_every_block_runs_each_variant_once():
    schedule = interleaved_schedule(["base", "human", "agent"], trials=6, warmup=2, seed=7)
    assert len(schedule) == (6 + 2) * 3
    for block in range(-2, 6):
        assert Counter(t.variant for t in schedule if t.block == block) == \
            {"base": 1, "human": 1, "agent": 1}
    assert [t.index for t in schedule] == list(range(len(schedule)))
    assert all(t.warmup == (t.block < 0) for t in schedule)


def test_order_is_randomised_and_reproducible():
    a = interleaved_schedule(["base", "human", "agent"], trials=10, warmup=0, seed=1)
    b = interleaved_schedule(["base", "human", "agent"], trials=10, warmup=0, seed=1)
    c = interleaved_schedule(["base", "human", "agent"], trials=10, warmup=0, seed=2)
    order = lambda s: [t.variant for t in s]  # noqa: E731
    assert order(a) == order(b)
    assert order(a) != order(c)
    firsts = {t.variant for t in a if t.index % 3 == 0}
    assert len(firsts) > 1  # not always the same variant first


def test_needs_at_least_one_trial():
    with pytest.raises(ValueError):
        interleaved_schedule(["base"], trials=0, warmup=0, seed=0)
