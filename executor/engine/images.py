"""Images, content-addressed: build what is missing, reuse what exists, never guess.

Two tiers, each tagged with a hash of everything that went into it, so a second run with the
same inputs finds the tag and builds nothing, and a changed input can never reuse a stale image:

  base     Debian via debootstrap + `docker import` (no registry needed), or an image the user
           names (e.g. nvidia/cuda:12.4.1-devel-ubuntu22.04, present locally or pullable)
  sandbox  `Dockerfile.gpu` on top of the base: toolchain -> repo at one commit, installed ->
           the controller's private copy of the base tree (for harness_patch)

Images live on whichever engine the run uses (engine/base.py); both speak the same image API.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from pydantic import BaseModel, Field

from executor.core.errors import ImageBuildError, InfraError, UserInputError
from executor.engine.chosen import engine_client
from executor.engine.docker import APIError, ImageNotFound

RECIPE_VERSION = "1"  # bump when the rendering below changes meaning
LABEL_IMAGE = "isobench.image"
LABEL_RECIPE = "isobench.recipe"
LABEL_CREATED = "isobench.created"
HOST_CA_BUNDLE = Path(os.environ.get("ISOBENCH_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
# The image recipes live in the top-level images/ (one copy: the top-level Dockerfile.gpu is a
# link to images/Dockerfile.gpu). A checkout or editable install reads them there; a wheel
# installs them as data files under <prefix>/share/isobench/images (pyproject.toml).
RECIPE_DIRS = (Path(__file__).resolve().parents[2] / "images",
               Path(sys.prefix) / "share" / "isobench" / "images")


def recipe_text(name: str) -> str:
    """The text of an image recipe (Dockerfile.gpu, Dockerfile.agent) from images/."""
    for folder in RECIPE_DIRS:
        if (folder / name).is_file():
            return (folder / name).read_text()
    raise InfraError(f"image recipe {name} not found in {' or '.join(map(str, RECIPE_DIRS))}: "
                     f"a broken install; reinstall isobench")

Log = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def sha256_hex(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


class ImageRef(BaseModel):
    """An image that exists on the engine: its content-addressed tag and Docker id."""

    tag: str
    id: str
    built: bool = Field(description="True if this call built it, False if it was reused.")
    seconds: float = 0.0
    recipe: str | None = Field(default=None, description="For isobench's own base image: "
                               "'base-recipe:<hash of its recipe>', what sandbox tags hash "
                               "instead of the id (see base_identity).")


def base_identity(ref: ImageRef) -> str:
    """What a sandbox image's tag hashes for the image it is built FROM.

    isobench's own base comes from debootstrap + `docker import`, whose image id differs on
    every host and every build (the import stamps a creation time): its identity is the hash of
    its recipe, so the same inputs give the same sandbox tag on any engine (reruns elsewhere),
    and the built content is checked separately (image_fingerprint). A named, pulled image's id
    is the digest of its config: the same wherever it is pulled, so it is its own identity.
    """
    return ref.recipe or ref.id


def find_image(client, tag: str) -> ImageRef | None:
    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return None
    return ImageRef(tag=tag, id=image.id, built=False)


# --------------------------------------------------------------------------- base tier


class BaseImageRecipe(BaseModel):
    """A Debian root filesystem made with debootstrap: no registry needed."""

    suite: str = Field(default="trixie", description="Debian suite; trixie has Python 3.13.")
    mirror: str = Field(default_factory=lambda: os.environ.get(
                            "ISOBENCH_DEBIAN_MIRROR", "http://deb.debian.org/debian"),
                        description="Debian mirror (a local mirror works for air-gapped hosts; "
                                    "$ISOBENCH_DEBIAN_MIRROR).")
    packages: list[str] = Field(default_factory=lambda: [
        "python3", "python3-venv", "python3-pip", "python3-setuptools", "python3-dev",
        "git", "gcc", "g++", "libc6-dev", "make", "patch", "ca-certificates", "procps",
        "curl", "xz-utils"])

    def content_hash(self) -> str:
        return sha256_hex(RECIPE_VERSION, self.model_dump_json())

    @property
    def tag(self) -> str:
        return f"isobench/base:{self.suite}-{self.content_hash()[:12]}"


def ensure_base_image(recipe: BaseImageRecipe, client=None,
                      log: Log = _noop) -> ImageRef:
    """The offline Debian base, built once per recipe and reused after."""
    client = client or engine_client()
    identity = {"recipe": f"base-recipe:{recipe.content_hash()}"}
    if found := find_image(client, recipe.tag):
        log(f"base image {recipe.tag} present")
        return found.model_copy(update=identity)
    if os.geteuid() != 0:
        raise UserInputError("building the offline base image needs root (debootstrap); run "
                             "`sudo isobench images base`, or name an image with --base-image")
    if not shutil.which("debootstrap"):
        raise UserInputError("debootstrap is not installed; `apt-get install debootstrap`, "
                             "or name an existing image with --base-image")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="isobench-rootfs-") as tmp:
        rootfs, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        log(f"debootstrap {recipe.suite} ({len(recipe.packages)} packages) ...")
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}",
               recipe.suite, str(rootfs), recipe.mirror]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            raise ImageBuildError(f"debootstrap failed: {' | '.join(tail)}")
        # apt caches are dead weight in every container started from this image
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(rootfs / junk, ignore_errors=True)
            (rootfs / junk).mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(tarball), "."],
                       check=True)
        repo, tag = recipe.tag.split(":")
        log(f"docker import -> {recipe.tag}")
        # one LABEL per label: podman's import reads `LABEL a=1 b=2` as one label `a`
        labels = {LABEL_IMAGE: "base", LABEL_RECIPE: recipe.content_hash()[:12],
                  LABEL_CREATED: str(int(time.time()))}
        changes = ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                   'ENV LANG=C.UTF-8', 'CMD ["bash"]',
                   *(f"LABEL {key}={value}" for key, value in labels.items())]
        answer = client.api.import_image_from_file(str(tarball), repository=repo, tag=tag,
                                                   changes=changes)
        tag_imported(client, str(answer), recipe.tag)
    ref = find_image(client, recipe.tag)
    if ref is None:
        raise ImageBuildError(f"docker import did not produce {recipe.tag}")
    return ref.model_copy(update={"built": True, "seconds": time.monotonic() - started,
                                  **identity})


def tag_imported(client, import_answer: str, tag: str) -> None:
    """Make sure an imported image carries `tag`: podman's import ignores the tag it is given
    (it names the image `<repository>:latest`), Docker's applies it. The image is the last id
    the import answered with."""
    if find_image(client, tag) is not None:
        return
    ids = re.findall(r"sha256:[0-9a-f]{64}", import_answer)
    if not ids:
        raise ImageBuildError(f"the engine's import named no image for {tag}: "
                              f"{import_answer[-200:]}")
    repository, _, version = tag.rpartition(":")
    image = client.images.get(ids[-1])
    image.tag(repository, version)
    if version != "latest" and any(t.endswith(f"{repository}:latest") for t in image.tags):
        client.images.remove(f"{repository}:latest")  # the name podman gave it: only a tag


def resolve_named_base(name: str, client=None,
                       log: Log = _noop) -> ImageRef:
    """A user-named base image: use the local copy, else try one pull, else say what to do."""
    client = client or engine_client()
    if found := find_image(client, name):
        return found
    log(f"pulling {name} ...")
    try:
        client.images.pull(name)
    except APIError as exc:
        raise UserInputError(
            f"base image {name} is not on this engine and could not be pulled "
            f"({exc.explanation or exc}); `docker load -i IMAGE.tar` it first") from exc
    ref = find_image(client, name)
    assert ref is not None
    return ref.model_copy(update={"built": True})


# --------------------------------------------------------------------------- sandbox tier


class RecordedInputs(BaseModel):
    """Build inputs taken from a bundle instead of this host: a rerun builds with the exporting
    host's Dockerfile text and CA bundle, so the recipe (and so the tag) is the recorded one."""

    dockerfile: str | None = Field(default=None, description="Dockerfile.gpu text to build with.")
    ca_bundle: bytes | None = Field(default=None, description="CA bundle to bake in.")


_recorded = RecordedInputs()


@contextlib.contextmanager
def recorded_inputs(inputs: RecordedInputs) -> Iterator[None]:
    """Build with `inputs` instead of this host's files while the block runs (reruns)."""
    global _recorded
    previous, _recorded = _recorded, inputs
    try:
        yield
    finally:
        _recorded = previous


def dockerfile_text() -> str:
    if _recorded.dockerfile is not None:
        return _recorded.dockerfile
    return recipe_text("Dockerfile.gpu")


def host_ca_bundle() -> bytes:
    """The host's CA bundle, baked into images so pip/uv inside reach registries behind
    TLS-intercepting proxies. Public certificates only: no secret lives here."""
    if _recorded.ca_bundle is not None:
        return _recorded.ca_bundle
    try:
        return HOST_CA_BUNDLE.read_bytes()
    except OSError:
        return b""


class SandboxImageRecipe(BaseModel):
    """Everything that determines a sandbox image; its hash is the image tag."""

    task: str
    sha: str = Field(description="Full sha of the commit installed in the image.")
    base_image_id: str = Field(description="The base's identity (base_identity): its recipe "
                                           "hash for isobench's base, else its image id.")
    dockerfile_sha: str
    ca_sha: str
    build_args: dict[str, str] = Field(default_factory=dict)
    recipe_version: str = RECIPE_VERSION

    def content_hash(self) -> str:
        return sha256_hex(self.model_dump_json())

    @property
    def tag(self) -> str:
        safe_task = "".join(c if c.isalnum() or c in "._-" else "-" for c in self.task.lower())
        return f"isobench/sandbox-{safe_task}:{self.sha[:12]}-{self.content_hash()[:12]}"


def sandbox_recipe(task: str, sha: str, base_image_id: str, args: dict[str, str]
                   ) -> SandboxImageRecipe:
    """The recipe the demo and vLLM share: same Dockerfile, CA bundle and tag scheme."""
    return SandboxImageRecipe(task=task, sha=sha, base_image_id=base_image_id,
                              dockerfile_sha=sha256_hex(dockerfile_text()),
                              ca_sha=sha256_hex(host_ca_bundle()), build_args=args)


def build_context(files: dict[str, bytes], trees: dict[str, Path], out: Path) -> None:
    """Write a Docker build context tar: literal files plus host directories (repo exports)."""
    with tarfile.open(out, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for arcname, directory in trees.items():
            tar.add(directory, arcname=arcname)


def build_image(context_tar: Path, tag: str, build_args: dict[str, str], labels: dict[str, str],
                log_file: Path, log: Log = _noop, target: str | None = None) -> ImageRef:
    """`docker build` through the SDK, the whole log to `log_file`, a failure's tail raised."""
    client = engine_client(timeout=None)
    started = time.monotonic()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    image_id = None
    errors: list[str] = []
    tail: list[str] = []
    with open(context_tar, "rb") as context, open(log_file, "a", encoding="utf-8") as out:
        try:
            stream = client.api.build(fileobj=context, custom_context=True, tag=tag, rm=True,
                                      forcerm=True, buildargs=build_args, labels=labels,
                                      decode=True, target=target, dockerfile="Dockerfile")
            for event in stream:
                if text := event.get("stream"):
                    out.write(text)
                    tail = (tail + text.splitlines())[-30:]
                if "error" in event:
                    errors.append(event["error"].strip())
                    out.write(f"ERROR: {event['error']}\n")
                if aux := event.get("aux"):
                    image_id = aux.get("ID", image_id)
        except APIError as exc:
            errors.append(str(exc.explanation or exc))
    if errors:
        raise ImageBuildError(f"image build failed for {tag}: {errors[-1]} "
                              f"(log: {log_file}; last lines: {' | '.join(tail[-3:])})")
    ref = find_image(client, tag)
    if ref is None:
        raise ImageBuildError(f"build finished but {tag} is missing (log: {log_file})")
    seconds = time.monotonic() - started
    log(f"built {tag} in {seconds:.1f}s")
    return ref.model_copy(update={"built": True, "seconds": seconds})


# Folders Dockerfile.gpu copies from the context, always present (empty when unused) because
# the classic builder cannot COPY conditionally: wheels (prebuilt vLLM wheels), deps
# (pre-fetched FETCHCONTENT sources for offline native builds), agent (an agent bundle),
# models (models isobench generated: the CPU track's workload, executor/parts/vllm/tiny_model.py).
CONTEXT_INPUTS = ("wheels", "deps", "agent", "models")


def ensure_sandbox_image(recipe: SandboxImageRecipe, repo_tree: Callable[[Path], None],
                         base_tag: str, log_dir: Path, log: Log = _noop,
                         client=None,
                         inputs: dict[str, Path] | None = None) -> ImageRef:
    """Reuse the image for this recipe, or build it from `Dockerfile.gpu`.

    `repo_tree(dest)` writes the leak-proof repository export into `dest`; it is only called
    when a build is actually needed (exporting a large repository is not free). `inputs` maps
    names in CONTEXT_INPUTS to host folders; their content must be pinned by the recipe's
    build args (a digest), since the tag is computed before they are read.
    """
    client = client or engine_client()
    if found := find_image(client, recipe.tag):
        log(f"sandbox image {recipe.tag} present")
        return found
    unknown = set(inputs or {}) - set(CONTEXT_INPUTS)
    if unknown:
        raise ValueError(f"unknown build inputs {sorted(unknown)}; expected {CONTEXT_INPUTS}")
    with tempfile.TemporaryDirectory(prefix="isobench-ctx-") as tmp:
        repo_dir = Path(tmp) / "repo"
        repo_tree(repo_dir)
        trees = {"repo": repo_dir}
        for name in CONTEXT_INPUTS:
            folder = (inputs or {}).get(name)
            if folder is None:
                folder = Path(tmp) / "empty" / name
                folder.mkdir(parents=True)
            trees[f"inputs/{name}"] = folder
        context = Path(tmp) / "context.tar"
        build_context({"Dockerfile": dockerfile_text().encode(), "ca.crt": host_ca_bundle()},
                      trees, context)
        labels = {LABEL_IMAGE: "sandbox", LABEL_RECIPE: recipe.content_hash()[:12],
                  LABEL_CREATED: str(int(time.time())), "isobench.task": recipe.task,
                  "isobench.sha": recipe.sha,
                  "isobench.recipe_json": json.dumps(recipe.model_dump())}
        log(f"building {recipe.tag} ...")
        args = {"BASE_IMAGE": base_tag, **recipe.build_args}
        return build_image(context, recipe.tag, args, labels,
                           log_dir / f"build-{recipe.sha[:12]}.log", log)
