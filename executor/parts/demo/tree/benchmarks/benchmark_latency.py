"""Latency of a simulated decode loop, reported like vLLM's benchmark_latency.py --output-json.

Each iteration admits sequences while blocks allow, then decodes: every running sequence gains
one token per step (a new block every block_size tokens) and finishes at random. The allocator
is on the hot path, as it is in a real engine's scheduler.

`--timer cpu` times with the process's CPU clock instead of the wall clock: the loop is
single-threaded and does no I/O, so its CPU time is its latency minus the time it waited for a
core, which on a shared machine (CI, a laptop running builds) is most of the noise.
"""

import argparse
import json
import random
import time

from minivllm import BlockAllocator, BlockManager, OutOfBlocks


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    pos = (len(sorted_values) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def decode_loop(num_blocks: int, block_size: int, steps: int, seed: int) -> None:
    rng = random.Random(seed)
    manager = BlockManager(BlockAllocator(num_blocks, block_size))
    next_seq = 0
    for _ in range(steps):
        while manager.allocator.num_free > 4 * block_size:
            manager.allocate_sequence(next_seq, rng.randint(1, 3 * block_size))
            next_seq += 1
        for seq_id in manager.running:
            if rng.random() < 0.03:
                manager.free_sequence(seq_id)
                continue
            try:
                manager.append_token(seq_id)
            except OutOfBlocks:  # a real scheduler would preempt; here the sequence ends
                manager.free_sequence(seq_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-blocks", type=int, default=1024)
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--num-iters-warmup", type=int, default=3)
    parser.add_argument("--num-iters", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-json", type=str, default=None)
    parser.add_argument("--timer", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args()
    clock = time.process_time if args.timer == "cpu" else time.perf_counter

    for i in range(args.num_iters_warmup):
        decode_loop(args.num_blocks, args.block_size, args.steps, args.seed + i)
    latencies = []
    for i in range(args.num_iters):
        start = clock()
        decode_loop(args.num_blocks, args.block_size, args.steps, args.seed + i)
        latencies.append(clock() - start)

    ordered = sorted(latencies)
    result = {
        "avg_latency": sum(latencies) / len(latencies),
        "latencies": latencies,
        "percentiles": {str(q): percentile(ordered, q) for q in (10, 25, 50, 75, 90, 99)},
    }
    print(f"Avg latency: {result['avg_latency']:.6f} seconds")
    for q, value in result["percentiles"].items():
        print(f"{q}% percentile latency: {value:.6f} seconds")
    if args.output_json:
        with open(args.output_json, "w") as fh:
            json.dump(result, fh, indent=4)


if __name__ == "__main__":
    main()
