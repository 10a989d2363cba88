"""What an image holds, listed from inside it, and what differs between two such lists."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from executor.engine.chosen import engine_client
from executor.engine.images import LABEL_IMAGE, sha256_hex


# --------------------------------------------------------------------------- content checks
#
# A tag says which inputs an image was built from; it cannot say that two builds of the same
# inputs hold the same files (debootstrap on another day, a pip resolve, a clock). The
# fingerprint is computed from inside the image, from what the benchmark actually runs on, so a
# rebuilt image that drifted is named with the package or file that changed.

FINGERPRINT_SCRIPT = r"""
set -u
echo '## dpkg'
dpkg-query -W -f '${Package}=${Version}\n' 2>/dev/null | sort
echo '## python'
for py in /opt/venv/bin/python python3; do
  if command -v "$py" >/dev/null 2>&1; then
    "$py" -m pip freeze --all 2>/dev/null | grep -v '^#' | sed 's/ @ file:.*//' | sort; break
  fi
done
echo '## repo'
repo="${ISOBENCH_REPO:-/workspace/repo}"
if [ -d "$repo/.git" ]; then
  cd "$repo" && export GIT_INDEX_FILE=/tmp/.isobench_fingerprint_index \
  && git add -A >/dev/null 2>&1 && git ls-files -s | awk '{print $2, $4}'
fi
echo '## files'
for f in /opt/isobench/base.sha /etc/isobench/host-ca.crt /etc/os-release; do
  [ -f "$f" ] && sha256sum "$f"
done
exit 0
"""


class ImageFingerprint(BaseModel):
    """What an image holds, listed from inside it: a digest and the lists it was taken over."""

    digest: str = Field(description="sha256 over every component below.")
    components: dict[str, list[str]] = Field(
        description="dpkg: package=version; python: pip freeze; repo: '<blob> <path>' of the "
                    "working tree (build outputs excluded); files: '<sha256> <path>'.")


def image_fingerprint(tag: str, client=None) -> ImageFingerprint:
    """List the image's packages and repository files from a throwaway container (no network,
    nothing kept)."""
    client = client or engine_client(timeout=None)
    output = client.containers.run(tag, ["bash", "-c", FINGERPRINT_SCRIPT], network_mode="none",
                                   remove=True, stdout=True, stderr=False,
                                   labels={LABEL_IMAGE: "fingerprint"})
    components: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.decode("utf-8", errors="replace").splitlines():
        if line.startswith("## "):
            current = components.setdefault(line[3:].strip(), [])
        elif current is not None and line.strip():
            current.append(line.strip())
    digest = sha256_hex(json.dumps(components, sort_keys=True))
    return ImageFingerprint(digest=digest, components=components)


def fingerprint_drift(recorded: ImageFingerprint, rebuilt: ImageFingerprint,
                      limit: int = 8) -> list[str]:
    """What differs, by component and entry: 'dpkg: libc6 2.41-6 -> 2.41-7', 'repo: changed
    minivllm/block.py'. Empty when the digests agree."""
    if recorded.digest == rebuilt.digest:
        return []
    drift = []
    for name in sorted(set(recorded.components) | set(rebuilt.components)):
        old = _keyed(name, recorded.components.get(name, []))
        new = _keyed(name, rebuilt.components.get(name, []))
        lines = []
        for key in sorted(set(old) | set(new)):
            if old.get(key) == new.get(key):
                continue
            if key not in new:
                lines.append(f"{name}: removed {key}")
            elif key not in old:
                lines.append(f"{name}: added {key}")
            elif name == "repo":
                lines.append(f"{name}: changed {key}")
            else:
                lines.append(f"{name}: {key} {old[key]} -> {new[key]}")
        if len(lines) > limit:
            lines = lines[:limit] + [f"{name}: ... {len(lines) - limit} more"]
        drift += lines
    return drift


def _keyed(component: str, entries: list[str]) -> dict[str, str]:
    """Entries keyed by what they are about (package, path), valued by version or digest."""
    out = {}
    for entry in entries:
        if component == "repo" or component == "files":
            value, _, key = entry.partition(" ")
        else:
            key, _, value = entry.partition("==" if "==" in entry else "=")
        out[key] = value
    return out


