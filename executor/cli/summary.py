"""The benchmark's results as rows of a terminal table (run-commit and bench share them)."""

from __future__ import annotations

from rich.markup import escape

from executor.parts.bench.results import BenchResults


def _interval(low, high, fmt: str) -> str:
    return "[n/a]" if low is None else f"[{low:{fmt}}, {high:{fmt}}]"


def results_rows(results: BenchResults) -> list[tuple[str, str]]:
    """Metric, per-variant medians, pairwise speedups, GPU, verdict: (label, text) rows."""
    metric = results.metric
    direction = "lower is better" if metric.get("lower_is_better", True) else "higher is better"
    rows = [("metric", f"{metric.get('name', metric.get('kind'))} ({metric.get('unit') or '?'}),"
                       f" {direction}; {results.trials_per_variant} trials/variant, "
                       f"{results.warmup_blocks} warm-up block(s), seed {results.seed}")]
    stopping = results.stopping
    if stopping:
        design = stopping["design"]
        flagged = (f"; {stopping['excluded']} flagged trial(s) excluded, {stopping['reruns']} "
                   f"re-run" if stopping.get("excluded") else "")
        rows.append(("trials", f"{stopping['mode']}: stopped {stopping['reason']} after "
                               f"{stopping['blocks']} of at most {design['max_trials']} per "
                               f"variant ({len(stopping['looks'])} look(s), "
                               f"{design['spending']} alpha spending){flagged}"))
    agent = results.variants.get("agent")
    if agent is not None:
        rows.append(("agent", f"apply: {agent.apply_method}"
                              f"{'; native rebuild' if agent.rebuilt else ''}; "
                              f"{agent.image_tag}"))
    if results.gate is not None:
        rows.append(("gate", f"{'passed' if results.gate.passed else 'FAILED'}: "
                             f"`{escape(results.gate.command)}` (exit {results.gate.exit_code})"))
    analysis = results.analysis or {}
    for name, s in (analysis.get("summaries") or {}).items():
        cv = f", cv {s['cv']:.1%}" if s.get("cv") is not None else ""
        mode = (analysis.get("modes") or {}).get(name) or {}
        slow = (f", slow mode {mode['n_slow']}/{mode['n']} ({mode['slow_over_fast']:.2f}x)"
                if mode.get("n_slow") else "")
        rows.append((f"  {name}", f"median {s['median']:.6g} "
                                  f"{_interval(s['ci_low'], s['ci_high'], '.6g')} n={s['n']}{cv}"
                                  f"{slow}"))
    for key, decision in (analysis.get("comparisons") or {}).items():
        comp = decision["comparison"]
        rows.append((f"  {key}", f"speedup {comp['speedup']:.3f}x "
                                 f"{_interval(comp.get('ci_low'), comp.get('ci_high'), '.3f')} "
                                 f"p_better {comp['p_better']:.2g} p_worse {comp['p_worse']:.2g} "
                                 f"{decision['verdict']}"))
    gpus = [t.gpu for t in results.trials if t.gpu and t.gpu.before]
    if gpus:
        first = gpus[0].before[0]
        clocks = [s.sm_clock_mhz for g in gpus for s in g.after if s.sm_clock_mhz]
        temps = [s.temperature_c for g in gpus for s in g.after if s.temperature_c is not None]
        rows.append(("gpu", f"{first.name}, driver {first.driver_version}; after trials SM "
                            f"{_span(clocks, 'MHz')}, {_span(temps, 'C')}; "
                            f"{sum(not g.idle_reached for g in gpus)} trial(s) started busy"))
    if results.noise_floor:
        floor = results.noise_floor
        mde = f"{floor['mde']:.1%}" if floor.get("mde") is not None else "n/a"
        rows.append(("noise floor", f"A/A {floor['aa_verdict']}; minimum detectable effect "
                                    f"{mde}"))
    rows += integrity_rows(results)
    rows.append(("verdict", f"[bold]{results.verdict}[/bold] {escape(results.verdict_reason)}"))
    if results.log_file:
        rows.append(("log", results.log_file))
    return rows


def _span(values: list[float], unit: str) -> str:
    return f"{min(values):.0f}-{max(values):.0f} {unit}" if values else f"? {unit}"


def integrity_rows(results: BenchResults) -> list[tuple[str, str]]:
    """What the harness protected and checked: only the rows that have something to say."""
    report, rows = results.integrity, []
    if report is None:
        return rows
    if report.protected_paths_touched:
        rows.append(("harness", "patch changes to harness paths dropped: "
                                + escape(", ".join(report.protected_paths_touched))))
    for variant, paths in report.restored.items():
        rows.append(("harness", f"{variant}: {len(paths)} path(s) restored from "
                                f"{report.reference_commit[:12]}: {escape(', '.join(paths[:5]))}"))
    if results.output_check is not None:
        check = results.output_check
        state = {True: "matches base", False: "DIFFERS from base", None: "not usable"}
        rows.append(("output", f"{state[check.matched]}"
                               + (f": {escape(check.diff.splitlines()[0])}"
                                  if check.diff and not check.matched else "")))
    if report.outer is not None and report.outer.applicable:
        rows.append(("outer", escape(report.outer.reason)))
    for line in report.startup_hooks + report.trials_cut[:3]:
        rows.append(("integrity", escape(line)))
    if report.metric_file_prewritten:
        rows.append(("integrity", f"metric file present before trials "
                                  f"{report.metric_file_prewritten} (deleted before the run)"))
    if report.patch_findings:
        kinds = sorted({f.kind for f in report.patch_findings})
        rows.append(("findings", f"{len(report.patch_findings)} in the patch ({', '.join(kinds)});"
                                 f" informative, see results.json"))
    return rows
