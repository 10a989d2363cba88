"""The bundle: one run, self-contained and secret-free, that someone else can rerun.

Format version 1 (a directory; `-o NAME.tar` writes the same tree as one tar)::

    bundle.json                 BundleIndex: format_version, the run it came from, every file
                                with its sha256, items (commits, verdict, the recorded patch
                                hash), images (tag, id, recipe, fingerprint), seeds, host facts
    plan.json                   the run's plan (ISO-Bench format)
    policy.json                 the retry policy, when the run has one
    options.json                the options `isobench run` ran with, when recorded
    items/<item>/journal.json   the item's journal, manifest, results and harness patch, as run
                 manifest.json
                 results.json
                 model_patch.diff
                 prompt.txt     the prompt the agent got (its hash is in the manifest)
                 model_calls.jsonl  the agent's model traffic (gateway record), if any
                 task.json      the TaskSpec as run (repo points at repo/repo.bundle on rerun)
                 agent/<kind>   an offline agent's payload (replay patch, script), if present
    recipes/Dockerfile.gpu      the exact Dockerfile text and CA bundle the images were built
    recipes/ca.crt              with (their hashes are in every sandbox recipe)
    repo/repo.bundle            `git bundle` holding every item's base and human commits
    images/images.tar           (--with-images) `docker save` of every image, layers shared

A reader checks every file against `files` and the patches and recipes against the hashes the
run itself recorded (journal patch sha256, recipe hashes in the tags) before using anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, Field, ValidationError

from executor import __version__
from executor.parts.bench.results import BenchResults
from executor.engine.images import BaseImageRecipe, SandboxImageRecipe, sha256_hex
from executor.engine.fingerprint import ImageFingerprint
from executor.core.errors import UserInputError
from executor.engine.hostfacts import HostFacts
from executor.core.journal import Journal, Manifest, utcnow
from executor.core.redact import Redactor, secret_env
from executor.records.state import (BUNDLE_INDEX_NAME, JOURNAL_NAME, MANIFEST_NAME, PATCH_NAME,
                            RESULTS_NAME)
from executor.core.tarballs import safe_extract
from executor.core.task import TaskSpec
from executor.parts.vllm.wheels import file_sha256  # streamed sha256 of a file

BUNDLE_FORMAT_VERSION = 1
ITEMS_DIR = "items"
TASK_NAME = "task.json"
DOCKERFILE_PATH = "recipes/Dockerfile.gpu"
CA_PATH = "recipes/ca.crt"
REPO_BUNDLE_PATH = "repo/repo.bundle"
IMAGES_ARCHIVE_PATH = "images/images.tar"

Log = Callable[[str], None]


class FileEntry(BaseModel):
    """One file of the bundle and its content hash."""

    sha256: str = Field(description="sha256 of the file's bytes.")
    bytes: int = Field(description="Size in bytes.")


class ImageEntry(BaseModel):
    """An image the run used: how to rebuild it and what it held."""

    tag: str = Field(description="Content tag (a hash of the recipe's inputs).")
    id: str | None = Field(default=None, description="Docker image id on the exporting engine.")
    kind: str = Field(description="os_base | sandbox.")
    recipe: dict | None = Field(default=None, description="BaseImageRecipe or "
                                "SandboxImageRecipe as built; None: not recorded.")
    fingerprint: ImageFingerprint | None = Field(
        default=None, description="Packages and files listed inside the image at export; "
                                  "None: the image was gone from the engine.")


class BundleItem(BaseModel):
    """One item of the run, as far as a rerun needs it."""

    item_id: str = Field(description="Plan item id.")
    commits: dict[str, str] = Field(description="base and human, full shas.")
    status: str | None = Field(default=None, description="Final status in the journal.")
    verdict: str | None = Field(default=None, description="Benchmark verdict, if measured.")
    patch_sha256: str | None = Field(default=None, description="sha256 of the harness patch "
                                     "as the journal recorded it (None: no patch).")
    images: dict[str, str] = Field(default_factory=dict, description="role -> tag: os_base, "
                                   "base, human.")
    agent: dict = Field(default_factory=dict, description="Agent identity from the manifest "
                        "(name, version or revision, config without secrets).")
    agent_payload: str | None = Field(default=None, description="Bundle path of an offline "
                                      "agent's payload (patch or script), when exported.")
    prompt_sha256: str | None = Field(default=None, description="Hash of the prompt text.")
    seed: int | None = Field(default=None, description="Schedule and bootstrap seed.")
    python_hash_seed: int | None = Field(default=None, description="PYTHONHASHSEED used.")
    host: HostFacts | None = Field(default=None, description="Where it was measured; None: "
                                   "not recorded (results from before host facts).")


class BundleIndex(BaseModel):
    """bundle.json: what the bundle holds and the hashes that prove it."""

    format_version: int = Field(default=BUNDLE_FORMAT_VERSION,
                                description="Bundle format; readers refuse newer ones.")
    isobench_version: str = Field(default=__version__, description="Exporting isobench.")
    created_at: datetime = Field(default_factory=utcnow)
    task: str = Field(description="Task id of the run.")
    agent: str = Field(description="Agent name of the run.")
    model: str = Field(description="Model of the run ('none' for offline agents).")
    run_id: str = Field(description="Run id of the exported run.")
    items: list[BundleItem] = Field(default_factory=list)
    images: list[ImageEntry] = Field(default_factory=list)
    dockerfile_sha256: str | None = Field(default=None, description="sha256_hex of "
                                          "recipes/Dockerfile.gpu (as sandbox recipes hash it).")
    ca_sha256: str | None = Field(default=None, description="sha256_hex of recipes/ca.crt.")
    repo_bundle: str | None = Field(default=None, description="Path of the git bundle.")
    images_archive: str | None = Field(default=None, description="Path of the docker save "
                                       "archive (--with-images).")
    files: dict[str, FileEntry] = Field(default_factory=dict,
                                        description="Every other file: path -> hash and size.")

    @property
    def run_ref(self) -> str:
        return f"{self.task}/{self.agent}/{self.model}/{self.run_id}"

    def image(self, tag: str) -> ImageEntry | None:
        return next((i for i in self.images if i.tag == tag), None)


def index_digest(bundle: Path) -> str:
    """The bundle's identity: the hash of its bundle.json (which hashes everything else)."""
    return file_sha256(bundle / BUNDLE_INDEX_NAME)


# --------------------------------------------------------------------------- reading


def open_bundle(path: Path, work: Path) -> Path:
    """The bundle directory: `path` itself, or a .tar unpacked under `work`."""
    if path.is_dir():
        return path
    if path.is_file() and tarfile.is_tarfile(path):
        dest = work / "bundle"
        with tarfile.open(path) as tar:
            safe_extract(tar, dest)
        inner = [p for p in dest.iterdir()]
        return inner[0] if len(inner) == 1 and inner[0].is_dir() else dest
    raise UserInputError(f"{path}: not a bundle directory or .tar")


def load_index(bundle: Path) -> BundleIndex:
    index_path = bundle / BUNDLE_INDEX_NAME
    try:
        raw = json.loads(index_path.read_text())
    except OSError:
        raise UserInputError(f"{bundle}: no {BUNDLE_INDEX_NAME}; not an isobench bundle") from None
    except ValueError as exc:
        raise UserInputError(f"{index_path} is not valid JSON: {exc}") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if not isinstance(version, int) or version > BUNDLE_FORMAT_VERSION:
        raise UserInputError(f"{index_path}: bundle format {version!r}; this isobench reads "
                             f"format {BUNDLE_FORMAT_VERSION} and older")
    try:
        return BundleIndex.model_validate(raw)
    except ValidationError as exc:
        raise UserInputError(f"{index_path}: {exc.errors()[0]['msg']} at "
                             f"{'.'.join(map(str, exc.errors()[0]['loc']))}") from None


def verify_bundle(bundle: Path) -> BundleIndex:
    """Every file against its hash, then patches and recipes against what the run recorded.

    Raises UserInputError (one line, exit 2) at the first mismatch: a bundle whose patch or
    recipe changed by one byte must not be rerun as if it were the recorded run.
    """
    index = load_index(bundle)
    listed = set(index.files)
    for rel, entry in sorted(index.files.items()):
        path = bundle / rel
        if not path.is_file():
            raise UserInputError(f"bundle {bundle}: {rel} is missing")
        found = file_sha256(path)
        if found != entry.sha256:
            raise UserInputError(f"bundle {bundle}: {rel} does not match its recorded sha256 "
                                 f"(recorded {entry.sha256[:12]}, found {found[:12]}); refusing "
                                 f"to rerun a changed bundle")
    extra = [str(p.relative_to(bundle)) for p in bundle.rglob("*")
             if p.is_file() and p.name != BUNDLE_INDEX_NAME
             and str(p.relative_to(bundle)) not in listed]
    if extra:
        raise UserInputError(f"bundle {bundle}: {extra[0]} is not in {BUNDLE_INDEX_NAME}; "
                             f"refusing to rerun a changed bundle")
    for item in index.items:
        patch = bundle / ITEMS_DIR / item.item_id / PATCH_NAME
        if item.patch_sha256 and patch.is_file():
            found = file_sha256(patch)
            if found != item.patch_sha256:
                raise UserInputError(f"bundle {bundle}: the patch of {item.item_id} does not "
                                     f"match the hash its journal recorded (recorded "
                                     f"{item.patch_sha256[:12]}, found {found[:12]})")
    _verify_recipes(bundle, index)
    return index


def _verify_recipes(bundle: Path, index: BundleIndex) -> None:
    dockerfile = bundle / DOCKERFILE_PATH
    if dockerfile.is_file() and sha256_hex(dockerfile.read_text()) != index.dockerfile_sha256:
        raise UserInputError(f"bundle {bundle}: {DOCKERFILE_PATH} does not match its recorded "
                             f"hash")
    ca = bundle / CA_PATH
    if ca.is_file() and sha256_hex(ca.read_bytes()) != index.ca_sha256:
        raise UserInputError(f"bundle {bundle}: {CA_PATH} does not match its recorded hash")
    for image in index.images:
        if image.recipe is None:
            continue
        model = BaseImageRecipe if image.kind == "os_base" else SandboxImageRecipe
        try:
            tag = model.model_validate(image.recipe).tag
        except ValidationError:
            raise UserInputError(f"bundle {bundle}: the recipe of {image.tag} is not a valid "
                                 f"{model.__name__}") from None
        if tag != image.tag:
            raise UserInputError(f"bundle {bundle}: the recipe of {image.tag} hashes to {tag}; "
                                 f"the recipe was changed")
        if image.kind == "sandbox" and (
                image.recipe.get("dockerfile_sha") != index.dockerfile_sha256
                or image.recipe.get("ca_sha") != index.ca_sha256):
            raise UserInputError(f"bundle {bundle}: the recipe of {image.tag} names another "
                                 f"Dockerfile or CA bundle than the bundle holds")


def item_task(bundle: Path, item_id: str) -> TaskSpec:
    return TaskSpec.model_validate_json((bundle / ITEMS_DIR / item_id / TASK_NAME).read_text())


def item_results(bundle: Path, item_id: str) -> BenchResults | None:
    path = bundle / ITEMS_DIR / item_id / RESULTS_NAME
    return BenchResults.model_validate_json(path.read_text()) if path.is_file() else None


def item_manifest(bundle: Path, item_id: str) -> Manifest | None:
    path = bundle / ITEMS_DIR / item_id / MANIFEST_NAME
    return Manifest.model_validate_json(path.read_text()) if path.is_file() else None


# --------------------------------------------------------------------------- writing


def check_secret_free(root: Path, redactor: Redactor | None = None) -> None:
    """Refuse (UserInputError) if any text file holds a known secret or a key-shaped string."""
    redactor = redactor or Redactor(secret_env().values())
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix == ".tar" or path.name.endswith(".bundle"):
            continue  # image archives and git packs are binary; images never hold keys
        text = path.read_bytes().decode("utf-8", errors="replace")
        if redactor.text(text) != text:
            raise UserInputError(f"refusing to export: {path.relative_to(root)} holds something "
                                 f"shaped like a key or a secret from this environment")


def seal(root: Path, index: BundleIndex) -> None:
    """Hash every file into the index and write bundle.json last."""
    index.files = {str(p.relative_to(root)): FileEntry(sha256=file_sha256(p),
                                                       bytes=p.stat().st_size)
                   for p in sorted(root.rglob("*"))
                   if p.is_file() and p.name != BUNDLE_INDEX_NAME}
    (root / BUNDLE_INDEX_NAME).write_text(index.model_dump_json(indent=2) + "\n")


def git_bundle(repo: str, shas: list[str], dest: Path) -> None:
    """A git bundle holding these commits (and their history), made from a throwaway bare
    clone so that the user's repository gains no refs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="isobench-export-repo-") as tmp:
        bare = Path(tmp) / "repo.git"
        _git(["clone", "--quiet", "--bare", "--no-tags", repo, str(bare)])
        for sha in sorted(set(shas)):
            _git(["update-ref", f"refs/isobench/{sha}", sha], cwd=bare)
        _git(["bundle", "create", str(dest), "--branches=__none__", "--glob=refs/isobench/*"],
             cwd=bare)


def clone_bundle(repo_bundle: Path, dest: Path) -> Path:
    """The bundled commits as a bare repository a rerun can build from."""
    _git(["clone", "--quiet", "--bare", str(repo_bundle), str(dest)])
    _git(["fetch", "--quiet", str(repo_bundle), "refs/isobench/*:refs/isobench/*"], cwd=dest)
    return dest


def _git(args: list[str], cwd: Path | None = None) -> None:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserInputError(f"git {args[0]} failed: {proc.stderr.strip().splitlines()[-1:]}")


def write_tar(directory: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.partial")
    with tarfile.open(tmp, "w") as tar:
        tar.add(directory, arcname=dest.stem)
    tmp.replace(dest)


def copy_if(src: Path, dest: Path) -> bool:
    if not src.is_file():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return True


def load_item_records(item_dir: Path) -> tuple[Journal | None, Manifest | None,
                                               BenchResults | None]:
    def read(name, model):
        path = item_dir / name
        return model.model_validate_json(path.read_text()) if path.is_file() else None

    return read(JOURNAL_NAME, Journal), read(MANIFEST_NAME, Manifest), read(RESULTS_NAME,
                                                                             BenchResults)

