#!/usr/bin/env python3
"""A real vLLM release from PyPI, built through the normal vLLM image path, and checked.

    .venv/bin/python scripts/vllm_release_image.py 0.5.4 0.8.5.post1 [--fresh] [--json OUT]

Per release: the sdist and the release wheel are downloaded from PyPI (cached in --cache-dir,
so a rerun downloads nothing); the sdist is unpacked and committed into a local git repository
with author and committer date = the release's upload time (so it has a sha and a date); the
wheel is filed under that sha (`WHEEL_DIR/<sha>/vllm-*.whl`, the --wheel-dir layout); then

    isobench images build <sha> --repo REPO --wheel-dir WHEEL_DIR --offline-base --torch-index pypi

runs twice (cold, then cached) and the image is checked: `import vllm` reports the release's
version from the checkout's files, the perf command's benchmark answers --help, and every
resolved package is no newer than the cut-off (`uv pip compile --exclude-newer CUT-OFF` of the
frozen set, run in the image: uv refuses a pinned version uploaded after the date).
Prints one JSON object per release (versions, cut-off, times, sizes); --json writes them all.
`--fresh` removes this release's image first (only ours), so "cold" rebuilds the commit's
layers; shared layers (base, toolchain, torch) are reused when present, as on any host.

The opt-in test tests/integration/test_vllm_release_images.py (ISOBENCH_VLLM_REAL=1) runs this.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPI_JSON = "https://pypi.org/pypi/vllm/json"
GB = 1e9
# No GPU here: let vLLM's platform detection settle on "no platform" quietly instead of probing.
IMAGE_ENV = ["-e", "VLLM_TARGET_DEVICE=cuda", "-e", "CUDA_VISIBLE_DEVICES="]


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def release_files(version: str) -> tuple[str, str, str]:
    """(sdist url, x86_64 wheel url, upload time) of `version`, from PyPI's JSON API."""
    with urllib.request.urlopen(PYPI_JSON, timeout=60) as response:
        data = json.load(response)
    files = data["releases"].get(version)
    if not files:
        raise SystemExit(f"vLLM {version} is not on PyPI")
    sdist = next(f for f in files if f["packagetype"] == "sdist")
    wheels = [f for f in files if f["packagetype"] == "bdist_wheel" and "x86_64" in f["filename"]]
    # one cp38-abi3 wheel from 0.5.2 on; before, one per CPython: take the offline base's 3.11
    wheel = next((f for f in wheels if "abi3" in f["filename"]), None) or next(
        f for f in wheels if "cp311" in f["filename"])
    uploaded = max(f["upload_time_iso_8601"] for f in files)
    return (urllib.parse.urljoin(PYPI_JSON, sdist["url"]),
            urllib.parse.urljoin(PYPI_JSON, wheel["url"]), uploaded)


def download(url: str, cache: Path) -> Path:
    target = cache / url.rsplit("/", 1)[-1]
    if not target.exists():
        log(f"downloading {target.name}")
        partial = target.with_suffix(target.suffix + ".part")
        with urllib.request.urlopen(url, timeout=600) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        partial.rename(target)
    return target


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}).stdout.strip()


def release_repo(version: str, sdist: Path, uploaded: str, dest: Path) -> str:
    """The sdist's tree as one commit dated at the release; returns its sha (stable: the
    same tree, author and date always give the same sha)."""
    if (dest / ".git").is_dir():
        return git(dest, "rev-parse", "HEAD")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    from executor.core.tarballs import safe_extract

    with tarfile.open(sdist) as tar:
        safe_extract(tar, tmp)
    (top,) = list(tmp.iterdir())
    for junk in top.glob("*.egg-info"):  # setuptools' build output, not the project's tree
        shutil.rmtree(junk)
    stamp = {"GIT_AUTHOR_NAME": "vLLM release", "GIT_AUTHOR_EMAIL": "release@localhost",
             "GIT_COMMITTER_NAME": "vLLM release", "GIT_COMMITTER_EMAIL": "release@localhost",
             "GIT_AUTHOR_DATE": uploaded, "GIT_COMMITTER_DATE": uploaded}
    subprocess.run(["git", "init", "-q", "-b", "main", str(top)], check=True)
    git(top, "add", "-A", "-f")  # -f: a release's .gitignore hides its generated _version.py
    git(top, "commit", "-q", "-m", f"vLLM {version} (PyPI sdist)", env=stamp)
    top.rename(dest)
    shutil.rmtree(tmp)
    return git(dest, "rev-parse", "HEAD")


def file_wheel(wheel: Path, wheel_dir: Path, sha: str) -> None:
    folder = wheel_dir / sha
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / wheel.name
    if not target.exists():
        try:
            os.link(wheel, target)
        except OSError:
            shutil.copy2(wheel, target)


def isobench_build(sha: str, repo: Path, wheel_dir: Path, log_dir: Path, retries: int = 0
                   ) -> tuple[float, bool, int]:
    """(seconds, whether the image was built rather than reused, failed attempts). A failed
    build is retried `retries` times (a shared engine's network can drop for a minute); the
    layers it finished are reused, and the seconds count every attempt."""
    total, failures = 0.0, 0
    while True:
        try:
            seconds, built = _build_once(sha, repo, wheel_dir, log_dir)
            return total + seconds, built, failures
        except BuildFailed as exc:
            total += exc.seconds
            failures += 1
            if failures > retries:
                raise SystemExit(str(exc)) from None
            log(f"{exc}; retrying ({failures}/{retries})")


class BuildFailed(Exception):
    def __init__(self, message: str, seconds: float):
        super().__init__(message)
        self.seconds = seconds


def _build_once(sha: str, repo: Path, wheel_dir: Path, log_dir: Path) -> tuple[float, bool]:
    command = [sys.executable, "-m", "executor.cli", "images", "build", sha, "--repo",
               str(repo), "--wheel-dir", str(wheel_dir), "--offline-base", "--torch-index",
               "pypi", "--no-probe", "--log-dir", str(log_dir)]
    started = time.monotonic()
    # wide: rich wraps at 80 columns without a terminal, which would split the status line
    proc = subprocess.run(command, cwd=ROOT, text=True, capture_output=True,
                          env={**os.environ, "COLUMNS": "400"})
    seconds = time.monotonic() - started
    sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
    if proc.returncode != 0:
        raise BuildFailed(f"isobench images build failed ({proc.returncode}) for {sha[:12]}",
                          seconds)
    return seconds, " built in " in proc.stdout


def in_image(tag: str, script: str, network: str = "none") -> subprocess.CompletedProcess[str]:
    """Run `script` in a throw-away container; no network unless asked (the checks of the
    code need none; the cut-off check reaches PyPI through the host's network, which does not
    depend on the engine's bridge: on a shared engine docker0 was seen gone for minutes)."""
    return subprocess.run(["docker", "run", "--rm", "--network", network, *IMAGE_ENV, tag,
                           "bash", "-c", script], text=True, capture_output=True)


def check_image(tag: str, manifest: dict) -> dict:
    """What the image says about itself: version, origin of the code, benchmark, cut-off."""
    probe = in_image(tag, "python -c 'import vllm, importlib.metadata as m; "
                          "print(\"ISOBENCH\", vllm.__version__, vllm.__file__, "
                          "m.version(\"vllm\"))'")
    said = next((line.split()[1:] for line in probe.stdout.splitlines()
                 if line.startswith("ISOBENCH ")), ["", "", ""])
    version, origin, dist = (said + ["", "", ""])[:3]
    bench = in_image(tag, "if [ -f benchmarks/benchmark_latency.py ]; then "
                          "echo benchmarks/benchmark_latency.py; "
                          "python benchmarks/benchmark_latency.py --help; else "
                          "echo vllm.entrypoints.openai.api_server; "
                          "python -m vllm.entrypoints.openai.api_server --help; fi")
    cutoff = manifest["cutoff"]
    # every frozen pin must still resolve when nothing newer than the cut-off exists; direct
    # references (the vLLM wheel, local stand-ins) have no upload date and are left out
    pins = ("grep -v -i -e '^vllm=' -e ' @ ' -e '+isobench' /opt/isobench/frozen-requirements.txt"
            " > /tmp/pins.txt")
    dated = in_image(tag, f"{pins} && uv pip compile --quiet --python /opt/venv/bin/python "
                          f"--exclude-newer {cutoff} --no-header --no-deps /tmp/pins.txt "
                          f"> /dev/null && echo ok", network="host")
    return {"import_version": version.strip(), "vllm_file": origin.strip(),
            "dist_version": dist.strip(), "import_ok": probe.returncode == 0,
            "import_tail": "" if probe.returncode == 0 else (probe.stdout + probe.stderr)[-600:],
            "bench_script": bench.stdout.split("\n", 1)[0],
            "bench_help_ok": bench.returncode == 0 and "usage:" in bench.stdout,
            "bench_help_tail": (bench.stdout + bench.stderr)[-400:] if bench.returncode else "",
            "packages_as_of_cutoff": dated.stdout.strip() == "ok",
            "cutoff_check_tail": (dated.stdout + dated.stderr)[-600:] if dated.returncode else ""}


def remove_release_images(sha: str) -> None:
    """Only this release's own sandbox images (the tag names its sha)."""
    listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}",
                             "isobench/sandbox-vllm"], text=True, capture_output=True).stdout
    for tag in listed.split():
        if tag.split(":", 1)[1].startswith(sha[:12]):
            subprocess.run(["docker", "rmi", tag], capture_output=True)


def run_release(version: str, work: Path, cache: Path, fresh: bool, retries: int) -> dict:
    from executor.engine.image_store import layer_sizes
    from executor.records.state import IMAGE_MANIFEST_NAME

    sdist_url, wheel_url, uploaded = release_files(version)
    sdist, wheel = download(sdist_url, cache), download(wheel_url, cache)
    repo = work / "repos" / f"vllm-{version}"
    sha = release_repo(version, sdist, uploaded, repo)
    wheel_dir, log_dir = work / "wheels", work / "logs"
    file_wheel(wheel, wheel_dir, sha)
    log(f"vLLM {version}: {sha[:12]} dated {uploaded}, wheel {wheel.name}")
    if fresh:
        remove_release_images(sha)
    cold, cold_built, failed = isobench_build(sha, repo, wheel_dir, log_dir, retries)
    cached, cached_built, _ = isobench_build(sha, repo, wheel_dir, log_dir)
    manifest = json.loads((log_dir / IMAGE_MANIFEST_NAME.format(sha12=sha[:12])).read_text())
    sizes = layer_sizes(manifest["image"], manifest["base_image"])
    env = manifest["plan"]["environment"]
    packages = manifest["packages"]
    return {
        "version": version, "sha": sha, "cutoff": manifest["cutoff"], "image": manifest["image"],
        "strategy": manifest["plan"]["strategy"], "python": env["python"],
        "suite": env["debian_suite"], "torch": env["torch"],
        "seconds_cold": round(cold, 1), "seconds_cached": round(cached, 1),
        "cold_built": cold_built, "cached_built": cached_built, "failed_attempts": failed,
        "image_gb": round(sizes.total_bytes / GB, 2), "base_gb": round(sizes.base_bytes / GB, 2),
        "above_base_gb": round((sizes.total_bytes - sizes.base_bytes) / GB, 2),
        "layers_gb": [(what[-60:], round(size / GB, 3)) for what, size in sizes.layers
                      if size > 1e6],
        "resolved": {name: packages.get(name) for name in
                     ("torch", "transformers", "xformers", "tokenizers", "numpy",
                      "vllm-flash-attn", "triton", "fastapi")},
        "package_count": len(packages),
        **check_image(manifest["image"], manifest),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="+", help="vLLM releases on PyPI, e.g. 0.5.4")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/isobench-vllm-releases"),
                        help="Repositories, wheel folder and build logs.")
    parser.add_argument("--cache-dir", type=Path, default=Path(os.environ.get(
        "XDG_CACHE_HOME", Path.home() / ".cache")) / "isobench" / "vllm-releases",
                        help="Downloaded sdists and wheels (kept between runs).")
    parser.add_argument("--fresh", action="store_true",
                        help="Remove this release's image first (a cold build of its layers).")
    parser.add_argument("--retries", type=int, default=2,
                        help="Retries of a failed cold build (finished layers are reused).")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for version in args.versions:
        result = run_release(version, args.work, args.cache_dir, args.fresh, args.retries)
        print(json.dumps(result), flush=True)
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
