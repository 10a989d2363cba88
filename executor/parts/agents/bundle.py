"""Agent bundles: an agent installed once, then mounted read-only into every sandbox that runs it.

A bundle is built per (agent, version or revision, source tree, install recipe, OS base,
toolchain) into a content-addressed image, `isobench/agent-<name>:<version>-<hash>`, FROM the
same OS base image (and toolchain command) as the sandbox images, so the interpreter its venv
points at is the sandbox's own. Its directory is then copied out once per host into
`$ISOBENCH_CACHE/agents/<name>-<hash>/` and bind-mounted read-only at the same path in the
agent sandbox.

Why an image *and* a host directory rather than a COPY layer on each sandbox image:
  * the sandbox images stay agent-free: one image per commit serves every agent and the
    benchmark, and a new agent revision rebuilds one small bundle, not one layer per commit;
  * the image is the cache with Docker's own bookkeeping (content tag, `docker save` for
    air-gapped hosts, isobench's image GC); the host copy is just the fastest way to hand it to
    a container, rebuilt from the image in seconds when a cache dir is new (CI sessions);
  * read-only: the agent cannot modify the code that runs it, and nothing it installs lands in
    the bundle (its `pip install` goes to the repository's environment, as the task expects).
Paths inside the bundle are absolute (venv shebangs, pyvenv.cfg), hence the same path in the
image and in the sandbox: `/opt/isobench/agents/<name>-<hash>`.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

from pydantic import BaseModel, Field

from executor.parts.agents.base import Log, PrepareContext
from executor.engine.images import (LABEL_CREATED, LABEL_IMAGE, LABEL_RECIPE, build_context,
                                    recipe_text, build_image, find_image, host_ca_bundle,
                                    sha256_hex)
from executor.engine.image_store import export_image_path
from executor.engine.chosen import engine_client
from executor.core.resources import Mount

BUNDLE_RECIPE_VERSION = "1"  # bump when the rendering below changes meaning
BUNDLES_ROOT = "/opt/isobench/agents"
UV_VERSION = "0.13.9"  # the installer of Python bundles: part of their recipes, so of their hash
UV = "/tmp/uv-tool/bin/uv"  # where the install steps below put it, for the build only
UV_INSTALL_STEPS = ("python3 -m venv /tmp/uv-tool",
                    f'/tmp/uv-tool/bin/pip install --quiet "uv=={UV_VERSION}"')
_export_lock = threading.Lock()  # one export per process at a time; rename settles the rest


def dockerfile_agent_text() -> str:
    return recipe_text("Dockerfile.agent")


def cache_root() -> Path:
    return Path(os.environ.get("ISOBENCH_CACHE", Path.home() / ".cache" / "isobench"))


class BundleRecipe(BaseModel):
    """Everything that determines a bundle; its hash names the image and the directory."""

    agent: str = Field(description="Agent name, e.g. 'mini-swe-agent' or 'trae'.")
    version: str = Field(description="Package version or source revision installed.")
    install_command: str = Field(description="Bash run in the image with $BUNDLE_DIR set.")
    source_digest: str = Field(default="", description="Hash of the source tree in src/, if any.")
    python_digest: str = Field(default="", description="Hash of the CPython in python/, if any.")
    base_image_id: str = Field(description="OS base image the bundle is built FROM.")
    toolchain_command: str = Field(default="true", description="The sandbox's toolchain step.")
    dockerfile_sha: str = Field(default_factory=lambda: sha256_hex(dockerfile_agent_text()))
    ca_sha: str = Field(default_factory=lambda: sha256_hex(host_ca_bundle()))
    recipe_version: str = BUNDLE_RECIPE_VERSION

    def content_hash(self) -> str:
        return sha256_hex(self.model_dump_json())

    @property
    def key(self) -> str:
        return f"{self.agent}-{self.content_hash()[:12]}"

    @property
    def tag(self) -> str:
        safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in self.version)[:40]
        return f"isobench/agent-{self.agent}:{safe}-{self.content_hash()[:12]}"

    @property
    def bundle_dir(self) -> str:
        """Path of the bundle in its image and in every sandbox that mounts it."""
        return f"{BUNDLES_ROOT}/{self.key}"


class AgentBundle(BaseModel):
    """A bundle ready to mount."""

    tag: str = Field(description="Content-addressed image tag.")
    image_id: str = Field(description="Docker id of the bundle image.")
    host_dir: Path = Field(description="The host copy that is bind-mounted.")
    bundle_dir: str = Field(description="Mount point in the sandbox (= path in the image).")
    built: bool = Field(default=False, description="This call built the image.")

    def mount(self) -> Mount:
        return Mount(host_path=str(self.host_dir), container_path=self.bundle_dir,
                     read_only=True)


def ensure_bundle(recipe: BundleRecipe, context: PrepareContext, log: Log,
                  src: Path | None = None, python: Path | None = None) -> AgentBundle:
    """The bundle for `recipe`: reuse its image (or build it), then its host copy (or export it).

    `src` and `python` are host directories put into the build context; their content must be
    pinned by `source_digest` / `python_digest`, since the tag is computed before they are read.
    """
    client = engine_client()
    image = find_image(client, recipe.tag)
    built = False
    if image is None:
        log(f"building agent bundle {recipe.tag} (once per host) ...")
        with tempfile.TemporaryDirectory(prefix="isobench-bundle-") as tmp:
            trees = {}
            for name, folder in (("src", src), ("python", python)):
                if folder is None:
                    folder = Path(tmp) / "empty" / name
                    folder.mkdir(parents=True)
                trees[name] = folder
            context_tar = Path(tmp) / "context.tar"
            build_context({"Dockerfile": dockerfile_agent_text().encode(),
                           "ca.crt": host_ca_bundle()}, trees, context_tar)
            labels = {LABEL_IMAGE: "agent", LABEL_RECIPE: recipe.content_hash()[:12],
                      LABEL_CREATED: str(int(time.time())),
                      "isobench.agent": recipe.agent, "isobench.agent_version": recipe.version}
            args = {"BASE_IMAGE": context.base_image, "TOOLCHAIN_COMMAND":
                    recipe.toolchain_command, "BUNDLE_DIR": recipe.bundle_dir,
                    "INSTALL_COMMAND": recipe.install_command}
            image = build_image(context_tar, recipe.tag, args, labels,
                                context.log_dir / f"build-agent-{recipe.key}.log", log)
        built = True
    host_dir = cache_root() / "agents" / recipe.key
    with _export_lock:
        if not host_dir.is_dir():
            log(f"agent bundle -> {host_dir}")
            export_image_path(recipe.tag, recipe.bundle_dir, host_dir)
    return AgentBundle(tag=recipe.tag, image_id=image.id, host_dir=host_dir,
                       bundle_dir=recipe.bundle_dir, built=built)


def read_bundle_file(bundle: AgentBundle, name: str) -> str:
    """A text file the install step left in the bundle (e.g. its frozen package list)."""
    try:
        return (bundle.host_dir / name).read_text()
    except OSError:
        return ""
