"""`isobench export`: one run of the state directory -> a bundle (format in bundle.py)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from executor.engine.images import BaseImageRecipe, dockerfile_text, host_ca_bundle, sha256_hex
from executor.engine.fingerprint import image_fingerprint
from executor.engine.image_store import image_labels, save_images
from executor.core.errors import EngineUnavailable, UserInputError
from executor.core.journal import Journal
from executor.runs.rerun.bundle import (CA_PATH, DOCKERFILE_PATH, IMAGES_ARCHIVE_PATH, ITEMS_DIR,
                                   REPO_BUNDLE_PATH, TASK_NAME, BundleIndex, BundleItem,
                                   ImageEntry, Log, check_secret_free, copy_if, git_bundle,
                                   load_item_records, seal, write_tar)
from executor.records.state import (JOURNAL_NAME, MANIFEST_NAME, MODEL_CALLS_NAME, PATCH_NAME,
                            OPTIONS_NAME, PLAN_NAME, POLICY_NAME, PROMPT_NAME, RESULTS_NAME,
                            attempt_dir_name)
from executor.core.task import Plan, PlanItem

RECIPE_LABEL = "isobench.recipe_json"


def find_run_dir(source: Path, run_id: str | None) -> Path:
    """A run directory itself, or the one run with `run_id` under a state directory."""
    if any(source.glob(f"*/{JOURNAL_NAME}")):
        return source
    if run_id is None:
        raise UserInputError(f"{source} is not a run directory; give --run-id to pick a run "
                             f"of this state directory")
    found = [p for p in source.glob(f"runs/*/*/*/{run_id}") if p.is_dir()]
    if not found:
        raise UserInputError(f"no run {run_id} under {source}/runs")
    if len(found) > 1:
        raise UserInputError(f"run id {run_id} names {len(found)} runs under {source}: "
                             f"{', '.join(str(p.relative_to(source)) for p in found)}; give "
                             f"the run directory itself")
    return found[0]


def _recorded_patch_sha(journal: Journal) -> str | None:
    for attempt in reversed(journal.attempts):
        if attempt.patch is not None and attempt.patch.bytes:
            return attempt.patch.sha256
    return None


def _prompt_file(item_dir: Path, journal: Journal) -> Path | None:
    for attempt in reversed(journal.attempts):
        for number in (attempt.attempt, attempt.agent_reused_from):
            if number and (path := item_dir / attempt_dir_name(number) / PROMPT_NAME).is_file():
                return path
    return None


def _sandbox_entry(tag: str, image_id: str | None) -> ImageEntry:
    labels = image_labels(tag)
    recipe = json.loads(labels[RECIPE_LABEL]) if labels and RECIPE_LABEL in labels else None
    return ImageEntry(tag=tag, id=image_id, kind="sandbox", recipe=recipe)


def export_run(source: Path, run_id: str | None, out: Path, *, with_images: bool = False,
               with_repo: bool = True, log: Log = print) -> BundleIndex:
    """Write the bundle of one run to `out` (a directory, or a .tar). Nothing is written at
    `out` unless the whole bundle was made and found secret-free."""
    run_dir = find_run_dir(source, run_id)
    if out.exists():
        raise UserInputError(f"{out} exists; choose a new bundle path")
    item_dirs = sorted(p.parent for p in run_dir.glob(f"*/{JOURNAL_NAME}"))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        root = Path(tmp) / out.name.removesuffix(".tar")
        root.mkdir()
        index = _collect(run_dir, item_dirs, root, with_repo, log)
        if with_images:
            tags = [i.tag for i in index.images if i.id]
            log(f"export: docker save {len(tags)} image(s) ...")
            save_images(tags, root / IMAGES_ARCHIVE_PATH)
            index.images_archive = IMAGES_ARCHIVE_PATH
        check_secret_free(root)
        seal(root, index)
        if out.suffix == ".tar":
            write_tar(root, out)
        else:
            root.rename(out)
    log(f"export: {len(index.items)} item(s), {len(index.images)} image(s) -> {out}")
    return index


def _collect(run_dir: Path, item_dirs: list[Path], root: Path, with_repo: bool,
             log: Log) -> BundleIndex:
    records = {d.name: load_item_records(d) for d in item_dirs}
    journals = [r[0] for r in records.values() if r[0] is not None]
    if not journals:
        raise UserInputError(f"{run_dir}: no journals to export")
    first = journals[0]
    task = first.task_id
    index = BundleIndex(task=task, agent=first.agent, model=first.model, run_id=first.run_id)
    for name in (PLAN_NAME, POLICY_NAME, OPTIONS_NAME):
        copy_if(run_dir / name, root / name)
    if not (root / PLAN_NAME).exists():  # a run-commit run has no plan: one from its items
        plan = Plan(repo="", task_id=task, items=[
            PlanItem(item_id=j.item_id, human=j.commits.get("human", ""),
                     pre=j.commits.get("base", "")) for j in journals])
        (root / PLAN_NAME).write_text(plan.model_dump_json(indent=2) + "\n")

    images: dict[str, ImageEntry] = {}
    repos: dict[str, list[str]] = {}
    for item_dir in item_dirs:
        journal, manifest, results = records[item_dir.name]
        if journal is None:
            continue
        dest = root / ITEMS_DIR / journal.item_id
        for name in (JOURNAL_NAME, MANIFEST_NAME, RESULTS_NAME, PATCH_NAME):
            copy_if(item_dir / name, dest / name)
        if prompt := _prompt_file(item_dir, journal):
            copy_if(prompt, dest / PROMPT_NAME)
            # The model traffic of that attempt (gateway record, redacted at write): what a
            # replay of an LLM agent serves again.
            copy_if(prompt.with_name(MODEL_CALLS_NAME), dest / MODEL_CALLS_NAME)
        item = BundleItem(item_id=journal.item_id, commits=journal.commits,
                          status=journal.status.value if journal.status else None,
                          verdict=results.verdict if results else None,
                          patch_sha256=_recorded_patch_sha(journal))
        if results is not None:
            item.seed, item.host = results.seed, results.host
            item.python_hash_seed = int(results.options.get("python_hash_seed", 0))
        if manifest is not None:
            (dest / TASK_NAME).write_text(json.dumps(manifest.task, indent=2) + "\n")
            item.agent, item.prompt_sha256 = manifest.agent, manifest.prompt_sha256
            item.images = dict(manifest.image_tags)
            item.agent_payload = _copy_payload(manifest.agent, dest, journal.item_id)
            repos.setdefault(manifest.task.get("repo", ""), []).extend(
                manifest.commits.values())
            _image_entries(manifest, journal, images, item)
        index.items.append(item)
        log(f"export: {journal.item_id} ({item.status}, {item.verdict or 'no verdict'})")

    index.images = list(images.values())
    for entry in index.images:
        try:
            entry.fingerprint = image_fingerprint(entry.tag) if entry.id else None
        except EngineUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - gone from the engine: recorded as unknown
            log(f"export: no fingerprint of {entry.tag} ({type(exc).__name__})")
    _write_recipes(root, index)
    repos.pop("", None)
    if with_repo and repos:
        if len(repos) > 1:
            raise UserInputError(f"the run's items come from {len(repos)} repositories; "
                                 f"export them with --no-repo")
        [(repo, shas)] = repos.items()
        log(f"export: git bundle of {len(set(shas))} commit(s) from {repo}")
        git_bundle(repo, shas, root / REPO_BUNDLE_PATH)
        index.repo_bundle = REPO_BUNDLE_PATH
    return index


def _image_entries(manifest, journal: Journal, images: dict[str, ImageEntry],
                   item: BundleItem) -> None:
    for role, tag in manifest.image_tags.items():
        if tag not in images:
            images[tag] = _sandbox_entry(tag, manifest.images.get(role))
    if manifest.base_recipe is not None:
        recipe = BaseImageRecipe.model_validate(manifest.base_recipe)
        os_id = next((a.images.get("os_base") for a in reversed(journal.attempts)
                      if a.images.get("os_base")), None)
        images.setdefault(recipe.tag, ImageEntry(tag=recipe.tag, id=os_id, kind="os_base",
                                                 recipe=recipe.model_dump(mode="json")))
        item.images["os_base"] = recipe.tag


def _copy_payload(agent: dict, dest: Path, item_id: str) -> str | None:
    """An offline agent's payload (replay patch, script) when its file is still there and
    still holds the recorded bytes."""
    config = agent.get("config") or {}
    for kind in ("patch", "script"):
        source, digest = config.get(kind), config.get(f"{kind}_sha256")
        if not source or not digest or not Path(source).is_file():
            continue
        if hashlib.sha256(Path(source).read_bytes()).hexdigest() != digest:
            continue
        target = dest / "agent" / kind
        copy_if(Path(source), target)
        return f"{ITEMS_DIR}/{item_id}/agent/{kind}"
    return None


def _write_recipes(root: Path, index: BundleIndex) -> None:
    """The Dockerfile text and CA bundle the sandbox recipes name (by hash)."""
    dockerfile, ca = dockerfile_text(), host_ca_bundle()
    (root / DOCKERFILE_PATH).parent.mkdir(parents=True, exist_ok=True)
    (root / DOCKERFILE_PATH).write_text(dockerfile)
    (root / CA_PATH).write_bytes(ca)
    index.dockerfile_sha256, index.ca_sha256 = sha256_hex(dockerfile), sha256_hex(ca)
    for image in index.images:
        if image.kind == "sandbox" and image.recipe and (
                image.recipe.get("dockerfile_sha") != index.dockerfile_sha256
                or image.recipe.get("ca_sha") != index.ca_sha256):
            # This isobench's Dockerfile (or the host's CA bundle) changed since the build:
            # the exact text is gone, so the recipe cannot be rebuilt as recorded.
            raise UserInputError(f"{image.tag} was built from another Dockerfile.gpu or CA "
                                 f"bundle than this isobench has; export it with the isobench "
                                 f"version that built it")


