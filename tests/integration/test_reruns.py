"""`isobench export` / `rerun` / `compare` across two real Docker engines.

One demo batch (3 items, replay agent, 4 trials a variant) is run on the shared engine and
exported twice (plain, and --with-images) for the whole module. A second Docker engine, started
here with its own data-root, exec-root, pidfile and socket and no bridge network, plays the
other host: it has none of the first engine's images. It is stopped and its directories removed
at teardown, whatever happened.

Order matters and is the file's order: the with-images rerun runs on the empty engine, the
rebuild rerun removes every image first, the planted slow-down uses the images the rebuild left.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import docker
import pytest

from executor.parts.demo import DEMO_HUMAN_SHA
from executor.runs.rerun.bundle import BundleIndex
from executor.runs.rerun.rerun import RerunRecord
from tests.conftest import run_cli
from tests.integration.separate_engine import separate_engine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TRIALS = "4"
RUN_ID = "recorded"
REBUILD_LIMIT_S = 2700  # the same, for a rerun that builds every image (base included)


class Recorded:
    def __init__(self, root: Path):
        self.root = root
        self.state = root / "state"
        self.run_dir = self.state / "runs" / "demo" / "replay" / "none" / RUN_ID
        self.bundle = root / "run.bundle"
        self.bundle_images = root / "run-images.bundle"

    def index(self, bundle: Path | None = None) -> BundleIndex:
        return BundleIndex.model_validate_json(((bundle or self.bundle) / "bundle.json")
                                              .read_text())


def half_the_human_patch(demo_repo: Path, work: Path) -> bytes:
    """The human commit's change plus `sum(range(300))` per allocated block, as a diff from the
    parent (the replay agent's patch)."""
    def git(*args: str) -> bytes:
        return subprocess.run(["git", "-C", str(work), *args], capture_output=True,
                              check=True).stdout

    subprocess.run(["git", "clone", "-q", str(demo_repo), str(work)], check=True)
    git("checkout", "-q", DEMO_HUMAN_SHA)
    allocator = work / "minivllm" / "block_allocator.py"
    hot_line = "        block_id = self._free_stack.pop()\n"
    text = allocator.read_text()
    assert text.count(hot_line) == 1
    allocator.write_text(text.replace(hot_line, hot_line + "        sum(range(300))\n"))
    return git("diff", f"{DEMO_HUMAN_SHA}^")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, docker_engine, base_image, demo_repo) -> Recorded:
    """The demo batch on the shared engine, exported with and without images.

    The replayed patch must sit far from every threshold, so that an honest rerun has to agree.
    It is the human's change plus a little work per allocation: about half the human's speedup
    (8x against the human's 17x here), far above base (improved) and far below the 95%
    matches_human line. (The human's own diff is not: identical code puts agent/human at 1.0,
    5% from that line, and four trials on a loaded machine flip it. The demo's reference patch
    reaches 85-95%, astride it.)"""
    rec = Recorded(tmp_path_factory.mktemp("reruns"))
    plan = rec.root / "plan.json"
    assert run_cli("plan", "--demo", "3", "-o", str(plan)).returncode == 0
    patch = rec.root / "half-the-human.patch"
    patch.write_bytes(half_the_human_patch(demo_repo, rec.root / "work"))
    out = run_cli("run", str(plan), "--state-dir", str(rec.state), "--run-id", RUN_ID,
                  "--agent", "replay", "--patch", str(patch), "--trials", TRIALS,
                  "--warmup", "0", "--no-progress", "--order", "plan", "--backoff", "0")
    assert out.returncode == 0, out.stderr[-3000:]
    out = run_cli("export", str(rec.state), "--run-id", RUN_ID, "-o", str(rec.bundle))
    assert out.returncode == 0, out.stderr[-3000:]
    out = run_cli("export", str(rec.run_dir), "-o", str(rec.bundle_images), "--with-images")
    assert out.returncode == 0, out.stderr[-3000:]
    return rec


class Engine:
    def __init__(self, host: str, client: docker.DockerClient):
        self.host, self.client = host, client

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.host}

    def tags(self) -> set[str]:
        return {t for image in self.client.images.list() for t in image.tags}


@pytest.fixture(scope="module")
def second_engine():
    """A second dockerd on this machine (tests/integration/separate_engine.py: own data-root,
    exec-root, pidfile, socket, network namespace; no bridge, so no network for its
    containers)."""
    if shutil.which("dockerd") is None or shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("a second Docker engine needs dockerd, unshare and root (CI has all three)")
    with separate_engine() as engine:
        yield Engine(engine.host, docker.DockerClient(base_url=engine.host, timeout=600))


def rerun(bundle: Path, state: Path, run_id: str, engine: Engine, *extra: str,
          env: dict | None = None, timeout: int = 900
          ) -> tuple[subprocess.CompletedProcess, RerunRecord | None]:
    out = run_cli("rerun", str(bundle), "--state-dir", str(state), "--run-id", run_id, *extra,
                  env={**engine.env, **(env or {})}, timeout=timeout)
    path = state / "runs" / "demo" / "replay" / "none" / run_id / "rerun.json"
    return out, (RerunRecord.model_validate_json(path.read_text()) if path.exists() else None)


def compare(a: Path, b: Path) -> dict:
    out = run_cli("compare", str(a), str(b), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def run_dir(state: Path, run_id: str) -> Path:
    return state / "runs" / "demo" / "replay" / "none" / run_id


# --------------------------------------------------------------------------- the tests


def test_bundle_is_complete_and_secret_free(recorded):
    index = recorded.index()
    assert index.format_version == 1 and len(index.items) == 3
    assert {i.kind for i in index.images} == {"os_base", "sandbox"}
    for item in index.items:
        assert item.patch_sha256 and item.seed is not None and item.host is not None
        assert set(item.images) == {"os_base", "base", "human"}
        assert item.agent_payload == f"items/{item.item_id}/agent/patch"
    for image in index.images:
        assert image.recipe and image.fingerprint and image.id
    for rel in ("plan.json", "recipes/Dockerfile.gpu", "recipes/ca.crt", "repo/repo.bundle",
                "items/demo-0000/model_patch.diff", "items/demo-0000/prompt.txt",
                "items/demo-0000/task.json"):
        assert rel in index.files
    manifest = json.loads((recorded.bundle / "items/demo-0000/manifest.json").read_text())
    assert manifest["determinism"]["TZ"] == "UTC"
    images_index = recorded.index(recorded.bundle_images)
    assert images_index.images_archive and images_index.images_archive in images_index.files


@pytest.mark.parametrize("target", ["items/demo-0000/model_patch.diff",
                                    "recipes/Dockerfile.gpu"])
def test_one_changed_byte_is_refused(recorded, tmp_path, target):
    copy = tmp_path / "bundle"
    shutil.copytree(recorded.bundle, copy)
    path = copy / target
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    out = run_cli("rerun", str(copy), "--state-dir", str(tmp_path / "state"))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0, out.stderr
    assert target in out.stderr and "refusing" in out.stderr
    assert not (tmp_path / "state").exists()


def test_changed_patch_with_a_matching_index_is_still_refused(recorded, tmp_path):
    """Re-hashing the index does not help: the journal recorded the patch's hash."""
    copy = tmp_path / "bundle"
    shutil.copytree(recorded.bundle, copy)
    patch = copy / "items/demo-0001/model_patch.diff"
    data = bytearray(patch.read_bytes())
    data[len(data) // 2] ^= 0x01
    patch.write_bytes(bytes(data))
    index = json.loads((copy / "bundle.json").read_text())
    index["files"]["items/demo-0001/model_patch.diff"]["sha256"] = \
        hashlib.sha256(patch.read_bytes()).hexdigest()
    (copy / "bundle.json").write_text(json.dumps(index))
    out = run_cli("rerun", str(copy), "--state-dir", str(tmp_path / "state"))
    assert out.returncode == 2 and "its journal recorded" in out.stderr, out.stderr


def test_with_images_round_trip_builds_nothing_and_reruns_the_agent(recorded, second_engine, tmp_path):
    engine = second_engine
    recorded_tags = {i.tag for i in recorded.index().images}
    assert not recorded_tags & engine.tags()  # the other host has none of them
    bridge = engine.client.networks.get("bridge").attrs.get("Options") or {}
    # its own bridge, without NAT: its containers reach nothing beyond this host
    assert bridge.get("com.docker.network.bridge.name") != "docker0"
    assert bridge.get("com.docker.network.bridge.enable_ip_masquerade") == "false"
    path = "/usr/local/bin:/usr/bin:/bin"  # debootstrap lives in /usr/sbin
    assert shutil.which("debootstrap", path=path) is None
    # --agent: the replay agent runs again too, in a sandbox without network.
    out, record = rerun(recorded.bundle_images, tmp_path / "state", "loaded", engine,
                        "--items", "demo-0000", "--agent", env={"PATH": path})
    assert out.returncode == 0, out.stderr[-3000:]
    journal = json.loads((run_dir(tmp_path / "state", "loaded") / "demo-0000" /
                          "journal.json").read_text())
    assert journal["rerun_of"].startswith(f"demo/replay/none/{RUN_ID}@")
    assert journal["attempts"][-1]["agent_outcome"] == "finished"
    assert {c.tag for c in record.images} == recorded_tags
    assert all(c.source == "loaded" and c.reproducible for c in record.images), record.images
    assert not list(run_dir(tmp_path / "state", "loaded").rglob("build-*.log"))
    report = compare(recorded.run_dir, run_dir(tmp_path / "state", "loaded"))
    [item] = [c for c in report["items"] if c["b"] is not None]
    assert item["same_verdict"], item


def test_rebuilt_on_a_second_engine_agrees(recorded, second_engine, tmp_path):
    engine = second_engine
    for image in engine.client.images.list():  # this engine is the test's own
        engine.client.images.remove(image.id, force=True)
    # Everything is built on the empty engine, the base by debootstrap: a clean bookworm
    # container with a busy host took over 900 s for it (the limit only turns a hang into a
    # failure).
    out, record = rerun(recorded.bundle, tmp_path / "state", "rebuilt", engine,
                        timeout=REBUILD_LIMIT_S)
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(record.items) == 3 and all(i.status == "success" for i in record.items)
    assert {c.tag for c in record.images} == {i.tag for i in recorded.index().images}
    for check in record.images:
        assert check.source == "built" and check.tag_match, check
        assert check.fingerprint_match, check.drift
    journal = json.loads((run_dir(tmp_path / "state", "rebuilt") / "demo-0000" /
                          "journal.json").read_text())
    assert journal["rerun_of"].startswith(f"demo/replay/none/{RUN_ID}@")
    report = compare(recorded.bundle, run_dir(tmp_path / "state", "rebuilt"))
    assert report["agreement_rate"] == 1.0 and not report["flipped"]
    assert all(c["same_patch"] for c in report["items"]), report["items"]
    # Not asserted: that every interval overlaps (replay_valid). Two timings taken minutes apart
    # on a shared 2-core machine under the suite's own load can part (seen in CI: human/base
    # 18.4 [17.6, 20.7] recorded vs 26.4 [24.7, 27.1] rebuilt, both `improved`); that is the
    # host, not the rerun. What the rerun must reproduce is asserted: images, verdicts, patches.
    table = run_cli("compare", str(recorded.bundle), str(run_dir(tmp_path / "state", "rebuilt")))
    print(table.stdout)


def test_planted_slowdown_of_base_is_flagged(recorded, second_engine, tmp_path):
    """The other host's base image does more work per token: the rerun names the drifted file,
    and compare flags the item (human/base no longer consistent)."""
    engine = second_engine
    index = recorded.index()
    base_tag = index.items[0].images["base"]
    if base_tag not in engine.tags():
        archive_name = recorded.index(recorded.bundle_images).images_archive
        with open(recorded.bundle_images / archive_name, "rb") as archive:
            engine.client.images.load(archive)
    repo, tag = base_tag.rsplit(":", 1)
    planter = engine.client.containers.create(
        base_tag, ["sed", "-i", r"s/^    def append_token(self, seq_id: int) -> None:$/&\n"
                                r"        sum(range(300))/", "minivllm/block_manager.py"],
        network_mode="none")
    try:
        planter.start()
        assert planter.wait()["StatusCode"] == 0
        planter.commit(repository=repo, tag=tag)
    finally:
        planter.remove(force=True)
    out, record = rerun(recorded.bundle, tmp_path / "state", "planted", engine,
                        "--items", "demo-0000")
    assert out.returncode == 1, out.stderr[-3000:]  # an image did not reproduce
    [drifted] = [c for c in record.images if not c.reproducible]
    assert drifted.tag == base_tag and drifted.source == "present"
    assert "repo: changed minivllm/block_manager.py" in drifted.drift
    report = compare(recorded.bundle, run_dir(tmp_path / "state", "planted"))
    [item] = [c for c in report["items"] if c["b"] is not None]
    # The slowed base image is also what the agent variant is built on, so agent/base moves as
    # well as human/base; which of the two leaves its widened interval depends on the trials.
    assert not item["replay_valid"], item
    assert "agent/base" in item["why"] or "human/base" in item["why"], item
    print(out.stderr[-1500:])  # the rerun's own account of the drifted image
    print(run_cli("compare", str(recorded.bundle),
                  str(run_dir(tmp_path / "state", "planted"))).stdout)
    assert "demo-0000" in report["invalid"]
