"""Where a vLLM commit's prebuilt wheel is, whether it exists, and whether it is the right one.

Per-commit wheels exist for main-branch commits from July 2024, under a URL pattern that changed
twice (facts.py). Nothing here downloads a wheel: the planner asks for candidates, a local wheel
folder is searched first (air-gapped hosts), and a URL is probed with a HEAD request under a
short timeout. A host that does not answer is remembered, so an offline plan over 96 commits
costs one timeout, not 96, and every answer is then "unprobed" rather than a guess.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import hashlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from executor.parts.vllm import facts

ProbeStatus = Literal["available", "missing", "unprobed"]


class WheelCandidate(BaseModel):
    """One place a commit's wheel may be, by the URL pattern of its era."""

    sha: str
    era: Literal["s3", "placeholder", "metadata"] = Field(description="URL pattern used.")
    url: str | None = Field(description="Wheel URL; for 'metadata' the metadata.json URL; None "
                                        "when the S3 name needs a version that is unknown.")
    check_version: bool = Field(
        default=False, description="METADATA Version must be checked (Sep-Nov 2024 cu118 trap).")
    note: str = ""


class ProbeResult(BaseModel):
    """What a probe learned about one URL."""

    status: ProbeStatus
    detail: str = ""


class WheelChoice(BaseModel):
    """The wheel a plan installs (own or nearest), with what is known about it."""

    sha: str = Field(description="Commit the wheel was built from.")
    location: str = Field(description="Local path or URL of the wheel (or metadata.json).")
    source: Literal["local", "url"]
    era: str = Field(description="'local' or the URL era.")
    status: ProbeStatus = Field(description="available: seen; unprobed: expected, unverified.")
    version: str | None = Field(default=None, description="METADATA Version when read.")
    sha256: str | None = Field(default=None, description="Digest of a local wheel file.")
    check_version_in_image: bool = Field(
        default=False, description="The install script must refuse a +cu118 METADATA Version.")
    notes: list[str] = Field(default_factory=list)


def wheel_candidates(sha: str, day: dt.date | None, version: str | None = None,
                     cuda: str | None = None) -> list[WheelCandidate]:
    """Candidate URLs for `sha`'s own wheel, most likely first; [] before wheels existed."""
    if day is None or day < facts.WHEELS_FROM:
        return []
    trap = facts.CU118_TRAP[0] <= day <= facts.CU118_TRAP[1]
    out: list[WheelCandidate] = []
    if day <= facts.S3_UNTIL:
        if version:
            out.append(WheelCandidate(sha=sha, era="s3",
                                      url=facts.S3_URL.format(sha=sha, version=version)))
        else:
            out.append(WheelCandidate(sha=sha, era="s3", url=None,
                                      note="S3 wheel name needs vllm/version.py (no mirror)"))
    if facts.PLACEHOLDER_FROM <= day <= facts.PLACEHOLDER_UNTIL:
        out.append(WheelCandidate(
            sha=sha, era="placeholder", url=facts.PLACEHOLDER_URL.format(sha=sha),
            check_version=trap,
            note="placeholder name; may hold the CUDA 11.8 build" if trap else ""))
    if day >= facts.METADATA_FROM:
        variant = {"12.9": "cu129/", "13.0": "cu130/"}.get(cuda or "", "")
        out.append(WheelCandidate(sha=sha, era="metadata",
                                  url=facts.METADATA_URL.format(sha=sha, variant=variant),
                                  note="metadata.json lists the real wheel file names"))
    return out


def local_wheel(wheel_dir: Path | None, sha: str) -> Path | None:
    """A wheel for `sha` in a local folder: `<dir>/<sha>/**/vllm-*.whl` (the URL layout, as a
    recursive download leaves it) or any `vllm-*+g<sha prefix>*.whl` (a setuptools-scm name)."""
    if wheel_dir is None or not wheel_dir.is_dir():
        return None
    for folder in (wheel_dir / sha, wheel_dir / sha[:12], wheel_dir / sha[:8]):
        if folder.is_dir():
            found = sorted(folder.rglob("vllm-*.whl"))
            if found:
                return found[0]
    for path in sorted(wheel_dir.rglob("vllm-*.whl")):
        if m := re.search(r"\+g([0-9a-f]{7,40})", path.name):
            if sha.startswith(m.group(1)):
                return path
    return None


def wheel_metadata_version(path: Path) -> str | None:
    """`Version:` from a wheel's METADATA (no install, no download)."""
    try:
        with zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            if not names:
                return None
            text = wheel.read(names[0]).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile):
        return None
    return email.parser.Parser().parsestr(text, headersonly=True).get("Version")


def version_problem(version: str | None) -> str | None:
    """Why a wheel's METADATA version disqualifies it, or None when it is fine."""
    if version and "cu118" in version:
        return f"METADATA Version {version} is the CUDA 11.8 build (placeholder-name trap)"
    return None


def _normalised(version: str) -> tuple[tuple[int, ...], str]:
    """0.8.5.post1+cu124 -> ((0, 8, 5), '.post1'): release numbers (trailing zeros dropped,
    so 0.5.4.0 is 0.5.4) and what follows them, the local tag removed."""
    public = version.split("+", 1)[0].strip().lower()
    head = re.match(r"\d+(?:\.\d+)*", public)
    if head is None:
        return (), public
    numbers = [int(part) for part in head.group(0).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers), public[head.end():]


def version_mismatch(wheel_version: str | None, tree_version: str | None) -> str | None:
    """Why a wheel's METADATA version contradicts the tree's literal version, or None.

    A local tag (+cu124) is a build variant of the same code and never a mismatch. A .dev wheel
    is a main-branch build between releases, named after the *next* release, so a tree still
    saying the last one is expected there; only a release-to-release disagreement is refused.
    Either side unknown (a setuptools-scm checkout has no literal) is not a mismatch.
    """
    if not wheel_version or not tree_version:
        return None
    if ".dev" in wheel_version or ".dev" in tree_version:
        return None
    if _normalised(wheel_version) == _normalised(tree_version):
        return None
    return (f"the wheel's METADATA says vLLM {wheel_version}, the tree's version file says "
            f"{tree_version}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Prober:
    """HEAD requests with a short timeout; a host that failed once is not asked again."""

    def __init__(self, enabled: bool = True, timeout_s: float = 3.0):
        self.enabled = enabled
        self.timeout_s = timeout_s
        self.dead_hosts: dict[str, str] = {}

    def _request(self, url: str, method: str) -> tuple[ProbeResult, bytes | None]:
        if not self.enabled:
            return ProbeResult(status="unprobed", detail="probing off (offline plan)"), None
        host = urllib.parse.urlsplit(url).netloc
        if host in self.dead_hosts:
            return ProbeResult(status="unprobed",
                               detail=f"{host} unreachable earlier: {self.dead_hosts[host]}"), None
        try:
            request = urllib.request.Request(url, method=method)
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read(1 << 20) if method == "GET" else None
                return ProbeResult(status="available", detail=f"HTTP {response.status}"), body
        except urllib.error.HTTPError as exc:
            # S3 answers 403 for a missing key in a bucket that cannot be listed
            if exc.code in (403, 404):
                return ProbeResult(status="missing", detail=f"HTTP {exc.code}"), None
            return ProbeResult(status="unprobed", detail=f"HTTP {exc.code}"), None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = str(getattr(exc, "reason", exc))[:120]
            self.dead_hosts[host] = reason
            return ProbeResult(status="unprobed", detail=f"{host} unreachable: {reason}"), None

    def head(self, url: str) -> ProbeResult:
        return self._request(url, "HEAD")[0]

    def metadata_wheel(self, metadata_url: str) -> tuple[ProbeResult, str | None]:
        """Fetch a metadata.json and return the x86_64 wheel URL it names."""
        result, body = self._request(metadata_url, "GET")
        if result.status != "available" or body is None:
            return result, None
        try:
            names = _wheel_names(json.loads(body))
        except ValueError:
            return ProbeResult(status="unprobed", detail="metadata.json is not JSON"), None
        names = [n for n in names if "x86_64" in n] or names
        if not names:
            return ProbeResult(status="missing", detail="metadata.json names no wheel"), None
        base = metadata_url.rsplit("/", 1)[0] + "/"
        return result, urllib.parse.urljoin(base, names[0])


def _wheel_names(data: object) -> list[str]:
    """Every string ending in .whl anywhere in a JSON document (its schema may change)."""
    if isinstance(data, str):
        return [data] if data.endswith(".whl") else []
    if isinstance(data, dict):
        return [n for value in data.values() for n in _wheel_names(value)]
    if isinstance(data, list):
        return [n for value in data for n in _wheel_names(value)]
    return []


def find_wheel(sha: str, day: dt.date | None, version: str | None, cuda: str | None,
               wheel_dir: Path | None, prober: Prober) -> WheelChoice | None:
    """The best wheel for `sha`: a local file, else an available URL, else an unprobed
    expected one; None when none can exist or every candidate is known missing."""
    skipped: list[str] = []
    if path := local_wheel(wheel_dir, sha):
        found = wheel_metadata_version(path)
        if problem := version_problem(found):
            skipped.append(f"local {path.name} skipped: {problem}")
        else:
            return WheelChoice(sha=sha, location=str(path), source="local", era="local",
                               status="available", version=found, sha256=file_sha256(path))
    expected: WheelChoice | None = None
    for candidate in wheel_candidates(sha, day, version, cuda):
        if candidate.url is None:
            continue
        if candidate.era == "metadata":
            result, url = prober.metadata_wheel(candidate.url)
        else:
            result, url = prober.head(candidate.url), candidate.url
        choice = WheelChoice(sha=sha, location=url or candidate.url, source="url",
                             era=candidate.era, status=result.status,
                             check_version_in_image=candidate.check_version,
                             notes=skipped + [n for n in (candidate.note, result.detail) if n])
        if result.status == "available":
            return choice
        if result.status == "unprobed" and expected is None:
            expected = choice
    return expected
