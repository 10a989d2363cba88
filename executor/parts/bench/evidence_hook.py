"""The harness's hook inside the timed process: what the benchmark computed, and when.

Run as `python /isobench/evidence_hook.py <benchmark script> <its arguments>` in place of
`python <benchmark script> ...`, in every benchmark run of a variant (warm-up and timed trials
alike, so the measured code cannot tell one run from another). Standard library only: it runs
in the variant's Python (3.8 or later), before any of the measured code is imported.

What it does:
  * reads its configuration (/isobench/evidence.json, written by the harness for this run)
    and deletes it before the benchmark starts: the key that signs the evidence lives only in
    this module's closure, not on disk, in the environment or on the command line;
  * keeps its own references to the real clocks (time.process_time, time.perf_counter),
    taken before the measured code can replace the module's attributes;
  * compiles the benchmark script (the harness's copy: protected paths are restored from the
    reference commit) with the target function's body wrapped in try/finally, so every call
    (one benchmark iteration) records the real CPU and wall time it took and, at its end, a
    digest of the state the iteration computed (a named reader, below); with `calls` set, the
    return values of those calls inside the script (vLLM: `generate`) are recorded instead
    or as well (their token ids);
  * runs the script as `__main__` with sys.argv and sys.path[0] as Python would set them;
  * when the script returns, records the sha256 of the metric file as the benchmark left it,
    then writes the evidence (signed: HMAC-SHA256 with the per-run key) to the evidence file.
    Anything the process does after that (atexit, signal handlers) cannot change what was
    recorded, and a metric file that differs afterwards was rewritten after the benchmark.
The harness (evidence.py) reads and checks the file.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import os
import sys
import time
import types

CONFIG_PATH = "/isobench/evidence.json"
STATE_CHARS = 120  # a readable summary per iteration, for the diff an `incorrect` shows


def _demo_capture(scope: dict):
    """In the timed region: only references (the loop's manager and generator are not used
    after it returns); the state is read once the benchmark is done (_demo_state)."""
    return scope.get("manager"), scope.get("rng"), scope.get("next_seq")


def _demo_state(captured) -> str:
    """The demo's decode loop: sequences admitted, blocks free, which sequences are running,
    and the next draw of the loop's own random generator (it shows that every random decision
    of the loop was taken). Block ids are left out: their order is the allocator's business
    (the human commit hands them out in another order than base)."""
    manager, rng, next_seq = captured
    if manager is None:
        return "no manager"
    running = list(manager.running)
    held = sum(len(manager.block_table(seq)) for seq in running)
    draw = rng.getrandbits(32) if rng is not None else None
    return (f"next_seq={next_seq} free={manager.allocator.num_free} running={len(running)} "
            f"held={held} seqs={hash_of(running)} rng={draw}")


def _request_ids(value):
    """In the timed region (vLLM's generate returned): a copy of each request's prompt ids,
    and of each completion's output ids and text (RequestOutput.prompt_token_ids,
    .outputs[*].token_ids, .text), nothing else: a few hundred ints, so the benchmark's own
    clock hardly sees it. Hashed after the run."""
    outputs = value if isinstance(value, (list, tuple)) else [value]
    # .outputs and .token_ids read plainly: a value that is not a RequestOutput is unreadable
    return [(tuple(getattr(o, "prompt_token_ids", None) or ()),
             [tuple(c.token_ids or ()) for c in o.outputs or []],
             [getattr(c, "text", None) for c in o.outputs or []])
            for o in outputs]


def _counts(requests) -> str:
    """Output tokens per request and completion: `4x32` when all equal, else each."""
    counts = [len(ids) for _, completions, _ in requests for ids in completions]
    if counts and len(set(counts)) == 1:
        return f"{len(counts)}x{counts[0]}"
    return ",".join(str(c) for c in counts)


def _token_counts(requests) -> str:
    """vLLM, where sampled ids are not reproducible between processes: requests, their
    prompts and how many tokens each produced (not which)."""
    return (f"requests={len(requests)} prompts={hash_of([r[0] for r in requests])} "
            f"out={_counts(requests)}")


def _token_ids(requests) -> str:
    """vLLM, exact: _token_counts, the output token ids, and the text they were detokenized
    to (a request that asks for text and gets none was not served as asked)."""
    return (f"{_token_counts(requests)} ids={hash_of([r[1] for r in requests])} "
            f"text={hash_of([r[2] for r in requests])}")


def hash_of(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


READERS = {"demo_block_manager": (_demo_capture, _demo_state)}
RESULT_READERS = {"token_ids": (_request_ids, _token_ids),
                  "token_counts": (_request_ids, _token_counts)}


class _Wrap(ast.NodeTransformer):
    """Wraps the target function's body in try/finally, and the named calls' results."""

    def __init__(self, function: str | None, calls: list[str]):
        self.function, self.calls, self.found = function, set(calls), 0

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        if node.name != self.function:
            return node
        self.found += 1
        enter = ast.parse("__isobench_evidence__.enter()").body[0]
        leave = ast.parse("__isobench_evidence__.leave(locals())").body[0]
        body = ast.Try(body=node.body, handlers=[], orelse=[], finalbody=[leave])
        node.body = [enter, body]
        return ast.fix_missing_locations(ast.copy_location(node, node))

    def visit_Call(self, node):
        self.generic_visit(node)
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name not in self.calls:
            return node
        self.found += 1
        wrapped = ast.Call(func=ast.Attribute(value=ast.Name("__isobench_evidence__", ast.Load()),
                                              attr="result", ctx=ast.Load()),
                           args=[node], keywords=[])
        return ast.fix_missing_locations(ast.copy_location(wrapped, node))


class _Recorder:
    def __init__(self, reader, result_reader, cpu, wall):
        self._reader, self._result_reader = reader, result_reader
        self._cpu, self._wall = cpu, wall
        self._started: list[tuple[float, float]] = []
        self.cpu_s: list[float] = []
        self.wall_s: list[float] = []
        self.captured: list = []
        self.captured_results: list = []
        self.states: list[str] = []
        self.results: list[str] = []
        self.digest = hashlib.sha256()

    def enter(self) -> None:
        self._started.append((self._cpu(), self._wall()))

    def leave(self, scope: dict) -> None:
        cpu, wall = self._cpu(), self._wall()  # first: the digest below is not timed
        started_cpu, started_wall = self._started.pop()
        self.cpu_s.append(cpu - started_cpu)
        self.wall_s.append(wall - started_wall)
        if self._reader is not None:
            self.captured.append(self._reader[0](scope))

    def read_states(self) -> None:
        """After the benchmark: each recorded call's result, then each iteration's state,
        summarised and digested in order."""
        for reader, captured, out in ((self._result_reader, self.captured_results,
                                       self.results),
                                      (self._reader, self.captured, self.states)):
            for item in captured:
                try:
                    if isinstance(item, Exception):
                        raise item
                    summary = reader[1](item)
                except Exception as exc:  # unreadable: that is evidence too
                    summary = f"unreadable: {type(exc).__name__}"
                self.digest.update(summary.encode())
                out.append(summary[:STATE_CHARS])
        self.captured, self.captured_results = [], []

    def result(self, value):
        """Around a named call inside the benchmark: a copy of what it returned; the
        summary and the hashing wait until the benchmark is done (read_states)."""
        if self._result_reader is not None:
            try:
                self.captured_results.append(self._result_reader[0](value))
            except Exception as exc:
                self.captured_results.append(exc)
        return value


def _file_sha256(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def main(argv: list[str]) -> None:
    cpu, wall = time.process_time, time.perf_counter  # before any measured code runs
    with open(CONFIG_PATH) as fh:
        config = json.load(fh)
    os.remove(CONFIG_PATH)
    key = config.pop("key").encode()
    script = argv[0]
    with open(script, "rb") as fh:
        source = fh.read()
    tree = ast.parse(source, filename=script)
    wrap = _Wrap(config.get("function"), config.get("calls") or [])
    tree = wrap.visit(tree)
    recorder = _Recorder(READERS.get(config.get("state") or ""),
                         RESULT_READERS.get(config.get("result") or ""), cpu, wall)
    evidence = {"script_sha256": hashlib.sha256(source).hexdigest(), "hooks": wrap.found,
                "input_seed": config.get("input_seed"),
                "completed": False, "exit": None}

    def write() -> None:
        recorder.read_states()
        evidence.update(iterations=len(recorder.cpu_s), cpu_s=recorder.cpu_s,
                        wall_s=recorder.wall_s, states=recorder.states,
                        results=recorder.results, digest=recorder.digest.hexdigest(),
                        metric_sha256=_file_sha256(config.get("metric_file")))
        body = json.dumps(evidence, sort_keys=True)
        signature = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
        with open(config["out"], "w") as fh:
            json.dump({"body": body, "hmac": signature}, fh)

    module = types.ModuleType("__main__")
    module.__dict__.update(__file__=os.path.abspath(script), __builtins__=__builtins__,
                           __isobench_evidence__=recorder)
    sys.modules["__main__"] = module
    sys.argv = list(argv) + [str(a) for a in config.get("argv_append") or []]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    code = compile(tree, os.path.abspath(script), "exec")
    try:
        exec(code, module.__dict__)
        evidence["completed"] = True
    except SystemExit as exc:
        evidence["completed"] = exc.code in (None, 0)
        evidence["exit"] = exc.code if isinstance(exc.code, int) else str(exc.code)
        write()
        raise
    except BaseException as exc:
        evidence["exit"] = f"{type(exc).__name__}"
        write()
        raise
    write()


if __name__ == "__main__":
    main(sys.argv[1:])
