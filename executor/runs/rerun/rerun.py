"""`isobench rerun BUNDLE`: the recorded run, again, on this host.

    verify     every file against bundle.json; patches against the journal's hashes; recipes
               against their tags (any mismatch: one line, exit 2, nothing run)
    images     --with-images archive loaded and checked against the recorded ids, else every
               image rebuilt from its recipe (the bundle's Dockerfile text and CA bundle);
               rebuilt tags compared with the recorded ones, rebuilt content with the recorded
               fingerprint: a drift is named by package or file
    measure    the recorded patch re-benchmarked with the recorded options and seeds through
               `benchmark()` (fresh containers); with --agent, the agent runs again through the
               one-commit pipeline: offline agents (replay, script) as they are, LLM agents on
               their recorded model traffic (llm_agent.py)
    record     a new run in the state layout (journal, manifest, results, patch per item) whose
               journals and manifests say `rerun_of`, and rerun.json with the image checks
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from executor.parts.bench.results import BenchResults
from executor.parts.bench.run import BenchOptions, bench_record, benchmark
from executor.engine.images import BaseImageRecipe, ImageRef, RecordedInputs, recorded_inputs
from executor.engine.fingerprint import fingerprint_drift, image_fingerprint
from executor.engine.image_store import engine_networks, image_ids, load_image_archive
from executor.core.errors import UserInputError
from executor.parts.repo import patch_stats
from executor.core.errors import IsobenchError, classify_text, unclassified
from executor.core.journal import (Attempt, Journal, Manifest, PhaseTiming, RunStatus, load_journal,
                              utcnow, write_bytes_atomic, write_json_atomic)
from executor.runs.pipeline import RunOptions, ensure_images
from executor.runs.rerun.bundle import (CA_PATH, DOCKERFILE_PATH, ITEMS_DIR, BundleIndex,
                                   BundleItem, Log, clone_bundle, index_digest, item_manifest,
                                   item_results, item_task, open_bundle, verify_bundle)
from executor.engine.sandbox import ENGINE_ERRORS
from executor.core.resources import GpuRequest, Resources
from executor.records.state import (save_journal, save_manifest, JOURNAL_NAME, MANIFEST_NAME,
                                    MODEL_CALLS_NAME, PATCH_NAME, PLAN_NAME, RERUN_NAME,
                                    RESULTS_NAME, RunKey, StateLayout, attempt_dir_name)
from executor.runs.rerun.llm_agent import (AgentPaths, RecordedAgent, check_host,
                                           recorded_agent, rerun_llm_agent)
from executor.core.task import CommitJob, Plan, PlanItem

OFFLINE_AGENTS = ("replay", "script")  # agents that call no model: rerun as they are


class RerunOptions(BaseModel):
    """How to rerun a bundle."""

    state_dir: Path = Field(description="State directory the new run is written to.")
    run_id: str = Field(description="Run id of the new run.")
    items: list[str] = Field(default_factory=list, description="Only these items (default all).")
    agent: bool = Field(default=False, description="Run the agent again (an LLM agent on its "
                                                   "recorded model traffic).")
    agent_paths: AgentPaths = Field(default_factory=AgentPaths,
                                    description="This host's paths for the agent's build.")
    cpus: float | None = Field(default=None, description="Override the benchmark's CPU quota.")
    cpuset: str | None = Field(default=None, description="Override the benchmark's cpuset.")


class ImageCheck(BaseModel):
    """One recorded image on this engine: how it got here and whether it is the same."""

    tag: str = Field(description="Recorded content tag.")
    kind: str = Field(description="os_base | sandbox.")
    rebuilt_tag: str | None = Field(default=None, description="The tag this host's recipe "
                                    "gave (None: not reached).")
    source: str = Field(default="", description="built | loaded (bundle archive) | present.")
    recorded_id: str | None = Field(default=None, description="Image id when exported.")
    id: str | None = Field(default=None, description="Image id on this engine.")
    fingerprint_match: bool | None = Field(default=None, description="Same content as "
                                           "recorded; None: nothing recorded to compare.")
    drift: list[str] = Field(default_factory=list, description="What differs, named.")

    @property
    def tag_match(self) -> bool:
        return self.rebuilt_tag == self.tag

    @property
    def reproducible(self) -> bool:
        return self.tag_match and self.fingerprint_match is not False


class RerunItem(BaseModel):
    """One item's rerun."""

    item_id: str
    recorded_verdict: str | None = Field(default=None, description="Verdict in the bundle.")
    status: str = Field(description="Status of the rerun attempt.")
    verdict: str | None = Field(default=None, description="Verdict of the rerun.")
    detail: str = ""


class RerunRecord(BaseModel):
    """rerun.json: where the run came from, and what its images and items did here."""

    rerun_of: str = Field(description="'<task>/<agent>/<model>/<run_id>@<bundle digest>'.")
    bundle: str = Field(description="The bundle path as given.")
    bundle_format: int = Field(description="Format version of the bundle.")
    images: list[ImageCheck] = Field(default_factory=list)
    items: list[RerunItem] = Field(default_factory=list)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None

    @property
    def non_reproducible(self) -> list[ImageCheck]:
        return [i for i in self.images if not i.reproducible]


def rerun_bundle(path: Path, options: RerunOptions, log: Log = print) -> RerunRecord:
    """Verify, rebuild or load, re-measure and record. See the module docstring."""
    with tempfile.TemporaryDirectory(prefix="isobench-rerun-") as tmp:
        work = Path(tmp)
        bundle = open_bundle(path, work)
        index = verify_bundle(bundle)
        items = _selected(index, options.items)
        llm_agent = _llm_agent(bundle, index, items, options) if options.agent else None
        key = RunKey(task=index.task, agent=index.agent, model=index.model,
                     run_id=options.run_id)
        layout = StateLayout(root=options.state_dir)
        run_dir = layout.run_dir(key)
        if any(run_dir.glob(f"*/{JOURNAL_NAME}")):
            raise UserInputError(f"run {options.run_id} already exists in {run_dir}; choose "
                                 f"another --run-id")
        record = RerunRecord(rerun_of=f"{index.run_ref}@{index_digest(bundle)[:16]}",
                             bundle=str(path), bundle_format=index.format_version)
        write_json_atomic(run_dir / PLAN_NAME, Plan(repo="", task_id=index.task, items=[
            PlanItem(item_id=i.item_id, human=i.commits["human"], pre=i.commits["base"])
            for i in items]))
        repo = (clone_bundle(bundle / index.repo_bundle, work / "repo.git")
                if index.repo_bundle else None)
        loaded = _load_archive(bundle, index, log)
        inputs = RecordedInputs(dockerfile=(bundle / DOCKERFILE_PATH).read_text(),
                                ca_bundle=(bundle / CA_PATH).read_bytes())
        checks: dict[str, ImageCheck] = {}
        try:
            for item in items:
                record.items.append(_rerun_item(bundle, index, item, key, layout, options,
                                                repo, inputs, loaded, checks, record, log,
                                                llm_agent))
                record.images = list(checks.values())
                write_json_atomic(run_dir / RERUN_NAME, record)
        finally:
            record.images = list(checks.values())
            record.finished_at = utcnow()
            write_json_atomic(run_dir / RERUN_NAME, record)
    return record


def _llm_agent(bundle: Path, index: BundleIndex, items: list[BundleItem],
               options: RerunOptions) -> RecordedAgent | None:
    """The recorded LLM agent, checked against this host (None for offline agents)."""
    if index.agent in OFFLINE_AGENTS:
        return None
    if not any(_model_calls(bundle, item) for item in items):
        raise UserInputError(f"--agent: {index.agent} talks to a model and the bundle holds no "
                             f"recorded model traffic (model_calls.jsonl) to replay; rerun "
                             f"without --agent to re-measure its recorded patches")
    manifest = next((m for item in items if (m := item_manifest(bundle, item.item_id))), None)
    recorded = recorded_agent(manifest.command_options if manifest else None,
                              options.agent_paths)
    check_host(recorded)
    return recorded


def _model_calls(bundle: Path, item: BundleItem) -> Path | None:
    path = bundle / ITEMS_DIR / item.item_id / MODEL_CALLS_NAME
    return path if path.is_file() else None


def _selected(index: BundleIndex, wanted: list[str]) -> list[BundleItem]:
    known = {i.item_id for i in index.items}
    missing = [w for w in wanted if w not in known]
    if missing:
        raise UserInputError(f"not in the bundle: {', '.join(missing)} (it has "
                             f"{', '.join(sorted(known))})")
    return [i for i in index.items if not wanted or i.item_id in wanted]


def _load_archive(bundle: Path, index: BundleIndex, log: Log) -> set[str]:
    """Load the bundled images and prove they are the recorded ones: an image id is the
    digest of its config, which names every layer's content digest."""
    if not index.images_archive:
        return set()
    log(f"rerun: loading {index.images_archive} ...")
    load_image_archive(bundle / index.images_archive)
    recorded = {i.tag: i.id for i in index.images if i.id}
    found = image_ids(list(recorded))
    for tag, image_id in recorded.items():
        if found[tag] != image_id:
            raise UserInputError(f"bundle image {tag}: loaded id {found[tag]} is not the "
                                 f"recorded {image_id}; the archive does not hold the run's "
                                 f"images")
    return set(recorded)


def _job(bundle: Path, item: BundleItem, repo: Path | None) -> CommitJob:
    task = item_task(bundle, item.item_id)
    if repo is not None:
        task = task.model_copy(update={"repo": str(repo)})
    return CommitJob(task=task, item_id=item.item_id, human_sha=item.commits["human"],
                     base_sha=item.commits["base"])


def _check_images(index: BundleIndex, item: BundleItem, base: ImageRef,
                  images: dict[str, ImageRef], loaded: set[str],
                  checks: dict[str, ImageCheck], log: Log) -> None:
    got = {"os_base": base, **images}
    for role, tag in item.images.items():
        ref = got.get(role)
        if tag in checks or ref is None:
            continue
        entry = index.image(tag)
        check = ImageCheck(tag=tag, kind=entry.kind if entry else role, rebuilt_tag=ref.tag,
                           recorded_id=entry.id if entry else None, id=ref.id,
                           source="built" if ref.built else
                           "loaded" if ref.tag in loaded else "present")
        if entry and entry.fingerprint:
            now = image_fingerprint(ref.tag)
            check.drift = fingerprint_drift(entry.fingerprint, now)
            check.fingerprint_match = not check.drift
        checks[tag] = check
        state = "same content" if check.fingerprint_match else (
            "content not recorded" if check.fingerprint_match is None else "CONTENT DRIFT")
        log(f"rerun: image {tag} {check.source}; tag "
            f"{'identical' if check.tag_match else 'DIFFERS: ' + str(ref.tag)}; {state}"
            + (f" ({'; '.join(check.drift[:3])})" if check.drift else ""))


def _bench_options(results: BenchResults, options: RerunOptions, networks: set[str]
                   ) -> tuple[BenchOptions, Resources]:
    """The recorded options, seeds included, and the recorded GPUs and limits (results.json
    keeps them under `gpus` and `limits` beside the options); limits changed only where the
    user overrides them."""
    recorded = dict(results.options)
    gpus = recorded.pop("gpus", None)
    limits = dict(recorded.pop("limits", None) or {})
    bench = BenchOptions.from_record({**recorded, "seed": results.seed})
    limits.update({k: v for k, v in (("cpus", options.cpus), ("cpuset", options.cpuset))
                   if v is not None})
    resources = Resources(gpus=GpuRequest.model_validate(gpus) if gpus else GpuRequest(),
                          **{k: v for k, v in limits.items() if k in Resources.model_fields})
    # Applying a patch needs no network; an engine without the default bridge has none to give.
    prepare = bench.prepare_network if bench.prepare_network in networks else "none"
    return bench.model_copy(update={"prepare_network": prepare}), resources


def _rerun_item(bundle: Path, index: BundleIndex, item: BundleItem, key: RunKey,
                layout: StateLayout, options: RerunOptions, repo: Path | None,
                inputs: RecordedInputs, loaded: set[str], checks: dict[str, ImageCheck],
                record: RerunRecord, log: Log,
                llm_agent: RecordedAgent | None = None) -> RerunItem:
    results = item_results(bundle, item.item_id)
    done = RerunItem(item_id=item.item_id, recorded_verdict=item.verdict, status="skipped")
    model_calls = _model_calls(bundle, item)
    if llm_agent is not None and model_calls is None:
        done.detail = "no recorded model traffic to replay"
        log(f"rerun: {item.item_id}: {done.detail}")
        return done
    # An LLM agent's attempt is worth replaying even if the run stopped before measuring it.
    if llm_agent is None and (results is None or not (bundle / ITEMS_DIR / item.item_id /
                                                      PATCH_NAME).is_file()):
        done.detail = "not measured in the recorded run: nothing to rerun"
        log(f"rerun: {item.item_id}: {done.detail}")
        return done
    job = _job(bundle, item, repo)
    item_dir = layout.item_dir(key, item.item_id)
    os_base = index.image(item.images.get("os_base", ""))
    base_recipe = (BaseImageRecipe.model_validate(os_base.recipe) if os_base and os_base.recipe
                   else BaseImageRecipe())
    if results is not None:
        bench, resources = _bench_options(results, options, engine_networks())
    else:
        bench, resources = BenchOptions(), Resources()
    run_options = RunOptions(state_dir=layout.root, run_id=key.run_id, bench=bench,
                             resources=resources, images={"base_recipe": base_recipe},
                             agent={"network": "none" if "bridge" not in engine_networks()
                                    else "bridge"}, command_line=list(sys.argv),
                             skip_bench=results is None)
    with recorded_inputs(inputs):
        if options.agent:
            if llm_agent is not None and model_calls is not None:
                outcome = rerun_llm_agent(job, llm_agent, model_calls, run_options, log)
            else:
                patch = (bundle / ITEMS_DIR / item.item_id / PATCH_NAME).read_bytes()
                outcome = _rerun_agent(bundle, item, job, run_options, patch, log)
            status, verdict = outcome.status.value, (outcome.results.verdict
                                                     if outcome.results else None)
            _mark_rerun(item_dir, record.rerun_of)
            base_ref, image_refs = _recorded_refs(item_dir)
        else:
            patch = (bundle / ITEMS_DIR / item.item_id / PATCH_NAME).read_bytes()
            status, verdict, base_ref, image_refs = _measure(
                bundle, item, job, run_options, patch, item_dir, record.rerun_of, log)
    if base_ref is not None:
        _check_images(index, item, base_ref, image_refs, loaded, checks, log)
    done.status, done.verdict = status, verdict
    log(f"rerun: {item.item_id}: {status}, verdict {verdict} (recorded {item.verdict})")
    return done


def _measure(bundle: Path, item: BundleItem, job: CommitJob, run_options: RunOptions,
             patch: bytes, item_dir: Path, rerun_of: str, log: Log
             ) -> tuple[str, str | None, ImageRef | None, dict[str, ImageRef]]:
    """Images and benchmark of the recorded patch, journaled as one attempt of a new run."""
    journal = Journal(task_id=job.task.name, item_id=item.item_id, run_id=run_options.run_id,
                      commits=dict(item.commits), agent=item.agent.get("name", "replay"),
                      model=item.agent.get("model", "none"), rerun_of=rerun_of)
    attempt = Attempt(attempt=1, patch=patch_stats(patch), agent_outcome="recorded")
    journal.attempts.append(attempt)
    journal_path = item_dir / JOURNAL_NAME
    save_journal(journal_path, journal)
    attempt_dir = item_dir / attempt_dir_name(1)
    base = None
    images: dict[str, ImageRef] = {}

    def phase(name: str, started: datetime) -> None:
        attempt.phases.append(PhaseTiming(name=name, started_at=started,
                                          duration_s=(utcnow() - started).total_seconds()))
        save_journal(journal_path, journal)

    try:
        started = utcnow()
        base, images = ensure_images(job, run_options, attempt_dir, log)
        attempt.images = {"os_base": base.id, **{k: v.id for k, v in images.items()}}
        phase("images", started)
        _write_manifest(bundle, item, run_options, images, item_dir, rerun_of)
        write_bytes_atomic(item_dir / PATCH_NAME, patch)
        started = utcnow()
        results = benchmark(job, images, patch, run_options.bench, attempt_dir / "bench",
                            run_options.run_id, log, resources=run_options.resources)
        phase("bench", started)
        write_json_atomic(attempt_dir / RESULTS_NAME, results)
        write_json_atomic(item_dir / RESULTS_NAME, results)
        attempt.status = (RunStatus.BENCH_FAILED if results.verdict == "bench_failed"
                          else RunStatus.SUCCESS)
        return attempt.status.value, results.verdict, base, images
    except KeyboardInterrupt:
        attempt.status = RunStatus.INTERRUPTED
        raise
    except (IsobenchError, *ENGINE_ERRORS) as exc:
        if isinstance(exc, UserInputError):
            raise
        text = f"{type(exc).__name__}: {exc}"
        attempt.status = RunStatus.INFRA_ERROR
        attempt.signature = classify_text(text, "rerun") or unclassified(text, "rerun")
        log(f"rerun: {item.item_id}: {text}")
        return attempt.status.value, None, base, images
    finally:
        if attempt.status == RunStatus.RUNNING:
            attempt.status = RunStatus.INFRA_ERROR
        attempt.finished_at = utcnow()
        save_journal(journal_path, journal)


def _write_manifest(bundle: Path, item: BundleItem, run_options: RunOptions,
                    images: dict[str, ImageRef], item_dir: Path, rerun_of: str) -> None:
    recorded = item_manifest(bundle, item.item_id)
    if recorded is None:
        return
    manifest = recorded.model_copy(update={
        "command_line": list(run_options.command_line),
        "images": {k: v.id for k, v in images.items()},
        "image_tags": {k: v.tag for k, v in images.items()},
        "bench": bench_record(run_options.bench, run_options.resources), "rerun_of": rerun_of,
        "created_at": utcnow()})
    save_manifest(item_dir, manifest)


def _rerun_agent(bundle: Path, item: BundleItem, job: CommitJob, run_options: RunOptions,
                 patch: bytes, log: Log):
    """The offline agent again, through the one-commit pipeline (agent sandbox, patch,
    benchmark). The replay agent replays its recorded payload, or the recorded patch."""
    from executor.parts.agents import make_agent
    from executor.runs.pipeline import run_commit

    name = item.agent.get("name", "replay")
    payload = bundle / item.agent_payload if item.agent_payload else None
    if payload is None and name == "replay":
        payload = bundle / ITEMS_DIR / item.item_id / PATCH_NAME
    if payload is None:
        raise UserInputError(f"{item.item_id}: the bundle holds no {name} payload (script) to "
                             f"run again; rerun without --agent")
    agent = make_agent(name, patch_file=payload if name == "replay" else None,
                       script_file=payload if name == "script" else None)
    return run_commit(job, agent, run_options, log)


def _mark_rerun(item_dir: Path, rerun_of: str) -> None:
    """The pipeline wrote a fresh journal and manifest; say which run they rerun."""
    if (journal := load_journal(item_dir / JOURNAL_NAME)) is not None:
        save_journal(item_dir / JOURNAL_NAME, journal.model_copy(update={"rerun_of": rerun_of}))
    if (path := item_dir / MANIFEST_NAME).is_file():
        manifest = Manifest.model_validate_json(path.read_text())
        save_manifest(item_dir, manifest.model_copy(update={"rerun_of": rerun_of}))


def _recorded_refs(item_dir: Path) -> tuple[ImageRef | None, dict[str, ImageRef]]:
    """The images the pipeline used, from the manifest it wrote (tags) and the journal (ids)."""
    path = item_dir / MANIFEST_NAME
    journal = load_journal(item_dir / JOURNAL_NAME)
    if not path.is_file() or journal is None or journal.last is None:
        return None, {}
    manifest = Manifest.model_validate_json(path.read_text())
    images = {role: ImageRef(tag=tag, id=manifest.images.get(role, ""), built=False)
              for role, tag in manifest.image_tags.items()}
    os_id = journal.last.images.get("os_base", "")
    base_tag = (BaseImageRecipe.model_validate(manifest.base_recipe).tag
                if manifest.base_recipe else "")
    return ImageRef(tag=base_tag, id=os_id, built=False), images

