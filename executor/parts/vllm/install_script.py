"""The shell each vLLM image stage runs (Dockerfile.gpu's TOOLCHAIN_COMMAND / INSTALL_COMMAND).

Rendered as plain bash from an InstallPlan, so the image's build args hold the whole recipe and
the content tag changes whenever any of it does. Run under `bash -euo pipefail -c`.

Wheel strategies keep the repository checkout as the code that runs: the wheel is installed
for its dependencies and compiled parts, the compiled files the checkout lacks are copied into
it (untracked, so Dockerfile.gpu excludes them from the agent's diff), and the installed
Python package is replaced by a .pth pointing at the checkout. An agent's Python edit is thus
live without any reinstall; a native edit needs `rebuild_command`.
"""

from __future__ import annotations

import shlex

from executor.parts.vllm import facts
from executor.parts.vllm.strategy import BuildSettings, InstallPlan

UV_VERSION = "0.13.9"
VENV_PYTHON = "/opt/venv/bin/python"
WHEEL_DIR_IN_IMAGE = "/opt/isobench/wheels"
# Files vLLM's build needs that requirements-build.txt lists from mid-2024 on; older commits
# name them only in pyproject.toml's build-system table.
# METADATA's Version of a wheel file (argv[1]); plain Python, so no unzip is needed.
_READ_VERSION = ("import email, sys, zipfile; w = zipfile.ZipFile(sys.argv[1]); "
                 "m = [n for n in w.namelist() if n.endswith('.dist-info/METADATA')]; "
                 "print(email.message_from_bytes(w.read(m[0]))['Version'] if m else '')")
SEED_PACKAGES = ("pip", "setuptools", "wheel")  # what `uv venv --seed` would add, undated
DEFAULT_BUILD_REQUIREMENTS = ("cmake>=3.26", "ninja", "packaging", "setuptools>=61",
                              "setuptools-scm>=8", "wheel", "jinja2")


def toolchain_command(plan: InstallPlan) -> str:
    """CUDA devel images have no Python: add the chosen one, git, ccache and a pinned uv. The
    offline Debian base has Python, git and compilers already: only uv is added."""
    python = plan.environment.python
    if plan.environment.base_kind == "debian":
        extra: list[str] = []
        if plan.strategy in ("cpu_wheel", "cpu_build"):
            from executor.parts.vllm.cpu_install import cpu_toolchain_command

            extra = cpu_toolchain_command()
        # Debian's python3 is externally managed (PEP 668): uv gets a venv of its own
        return "\n".join([*extra,
            "python3 -m venv /opt/isobench/uv",
            f"/opt/isobench/uv/bin/pip install --no-cache-dir uv=={UV_VERSION}",
            "ln -sf /opt/isobench/uv/bin/uv /usr/local/bin/uv",
        ])
    lines = [
        "export DEBIAN_FRONTEND=noninteractive",
        "apt-get update",
        "apt-get install -y --no-install-recommends git ccache curl ca-certificates "
        "python3 python3-pip python3-venv python3-dev",
        "rm -rf /var/lib/apt/lists/*",
        f"python3 -m pip install --no-cache-dir uv=={UV_VERSION}",
    ]
    if python != facts.DEFAULT_PYTHON:
        # Ubuntu 22.04 ships 3.10 only; uv brings a standalone CPython for any other
        lines.append(f"uv python install {python}")
    return "\n".join(lines)


def torch_command(plan: InstallPlan) -> str:
    """The shared torch layer: the venv, the pinned torch, and torch's own dependencies as of
    the pin's release (facts.TORCH_RELEASED), so the layer holds nothing newer than any commit
    that pins it.

    download.pytorch.org publishes no upload times, and uv treats a file without one as absent
    under --exclude-newer: from that index torch alone is taken (--no-deps), its dependencies
    (nvidia-* CUDA libraries, sympy, ...) then come from PyPI, which dates every file."""
    env = plan.environment
    pip = f"uv pip install --python {VENV_PYTHON}"
    cutoff = f" --exclude-newer {env.torch_exclude_newer}" if env.torch_exclude_newer else ""
    # no `uv venv --seed`: it installs today's pip/setuptools/wheel (and wheel's packaging),
    # which the commit's resolution then keeps; here they are dated like everything else
    lines = [f"uv venv --python python{env.python} /opt/venv"]
    if env.torch_index_url != facts.PYPI_INDEX:
        lines.append(f"{pip} --no-deps --index-url {shlex.quote(env.torch_index_url)} "
                     f"torch=={env.torch}")
    lines += [f"{pip}{cutoff} {' '.join(SEED_PACKAGES)} torch=={env.torch}",
              f'{VENV_PYTHON} -c "import torch; print(\'torch\', torch.__version__, '
              f'\'cuda\', torch.version.cuda)"']
    return "\n".join(lines)


# Importable stand-ins for facts.VANISHED packages: the module names their dependants import,
# and no more. pyairports: outlines' airport-code type reads AIRPORT_LIST at import time (so
# `import vllm` needs it); empty, that one type has no members, everything else is unchanged.
STAND_INS: dict[str, dict[str, str]] = {
    "pyairports": {"pyairports/__init__.py": "", "pyairports/airports.py": "AIRPORT_LIST = []\n"},
}
STAND_IN_DIR = "/opt/isobench/stand-ins"
OVERRIDES = "/opt/isobench/overrides.txt"


def stand_in_lines() -> list[str]:
    """Write each stand-in as a tiny setuptools project and list it in the overrides file; uv
    uses an override only when the resolution reaches that package."""
    lines = [f": > {OVERRIDES}"]
    for name, files in sorted(STAND_INS.items()):
        root = f"{STAND_IN_DIR}/{name}"
        project = (f'[project]\nname = "{name}"\nversion = "0.0.0+isobench.stand.in"\n'
                   f'[build-system]\nrequires = ["setuptools>=61"]\n'
                   f'build-backend = "setuptools.build_meta"\n')
        lines.append(f"mkdir -p {root}")
        lines.append(f"printf '%s' {shlex.quote(project)} > {root}/pyproject.toml")
        for path, text in files.items():
            lines.append(f"mkdir -p {root}/{path.rsplit('/', 1)[0]}")
            lines.append(f"printf '%s' {shlex.quote(text)} > {root}/{path}")
        lines.append(f'echo "{name} @ file://{root}" >> {OVERRIDES}')
    return lines


def _uv_install(plan: InstallPlan, *args: str) -> str:
    cutoff = f" --exclude-newer {plan.exclude_newer}" if plan.exclude_newer else ""
    index = plan.environment.torch_index_url
    extra = ("" if index == facts.PYPI_INDEX else
             f" --extra-index-url {index} --index-strategy unsafe-best-match")
    return (f"uv pip install --python {VENV_PYTHON}{cutoff}{extra} --overrides {OVERRIDES} "
            f"{' '.join(args)}")


def _common_prelude() -> list[str]:
    return [*stand_in_lines(),
        # up to v0.10.0 any non-empty value (even "0") turns precompiled mode on, and it
        # fetches the latest nightly: never let it decide
        "unset VLLM_USE_PRECOMPILED VLLM_PRECOMPILED_WHEEL_LOCATION VLLM_PRECOMPILED_WHEEL_COMMIT",
        'REPO="$PWD"',
        "mkdir -p /opt/isobench",
    ]


def _freeze(plan: InstallPlan) -> list[str]:
    return [f"uv pip freeze --python {VENV_PYTHON} > {plan.frozen_requirements}",
            f'echo "isobench: $(wc -l < {plan.frozen_requirements}) packages frozen in '
            f'{plan.frozen_requirements}"']


def wheel_install_command(plan: InstallPlan) -> str:
    """own_wheel / nearest_wheel: dependencies from the wheel, Python from the checkout."""
    assert plan.wheel is not None
    wheel = plan.wheel
    lines = _common_prelude()
    if wheel.source == "local":
        lines.append(f"SRC={shlex.quote(WHEEL_DIR_IN_IMAGE + '/' + wheel_file_name(plan))}")
    elif wheel.era == "metadata" and wheel.location.endswith("metadata.json"):
        lines += [f"META=$(curl -fsSL --retry 3 {shlex.quote(wheel.location)})",
                  "NAME=$(printf '%s' \"$META\" | grep -o '[^\"/]*x86_64[^\"]*\\.whl' | head -n1)",
                  'test -n "$NAME" || { echo "isobench: metadata.json names no x86_64 wheel"; '
                  'exit 3; }',
                  "SRC=/opt/isobench/wheel-dl/$NAME",
                  "mkdir -p /opt/isobench/wheel-dl",
                  f"curl -fL --retry 3 -o \"$SRC\" "
                  f"{shlex.quote(wheel.location.rsplit('/', 1)[0])}/\"$NAME\""]
    else:
        lines += ["mkdir -p /opt/isobench/wheel-dl",
                  "SRC=/opt/isobench/wheel-dl/vllm.whl",
                  f'curl -fL --retry 3 -o "$SRC" {shlex.quote(wheel.location)} || '
                  f'{{ echo "isobench: wheel missing: {wheel.location} (plan was '
                  f'{wheel.status}); rerun isobench images plan --probe"; exit 3; }}']
    lines += [
        f"VER=$({VENV_PYTHON} -c {shlex.quote(_READ_VERSION)} \"$SRC\")",
        'test -n "$VER" || { echo "isobench: $SRC has no METADATA Version"; exit 3; }',
        'case "$VER" in *cu118*) echo "isobench: $SRC is the CUDA 11.8 build ($VER)"; '
        "exit 3;; esac",
        # the placeholder file name (vllm-1.0.0.dev) disagrees with METADATA; installers check
        'WHEEL=/opt/isobench/wheel-dl/vllm-$VER-cp38-abi3-manylinux1_x86_64.whl',
        'mkdir -p /opt/isobench/wheel-dl && { [ "$SRC" = "$WHEEL" ] || cp "$SRC" "$WHEEL"; }',
        _uv_install(plan, '"$WHEEL"'),
        *overlay_checkout_lines(),
        # the renamed copy is installed and spent: kept, it would be a second copy of the
        # wheel (0.1-0.4 GB) in this layer
        "rm -rf /opt/isobench/wheel-dl",
    ]
    return "\n".join(lines + _freeze(plan))


def overlay_checkout_lines() -> list[str]:
    """After a wheel install: the checkout becomes the installed vllm. Compiled and generated
    files it lacks come from the wheel (untracked, so outside every diff); tracked Python files
    stay the commit's own; the installed package is replaced by a .pth to the checkout."""
    return [
        f'SITE=$({VENV_PYTHON} -c "import sysconfig; print(sysconfig.get_paths()[\'purelib\'])")',
        'cd "$SITE" && find vllm -type f ! -name "*.pyc" | sort > /tmp/isobench-wheel-files',
        'git -C "$REPO" ls-files vllm | sort > /tmp/isobench-repo-files',
        "comm -23 /tmp/isobench-wheel-files /tmp/isobench-repo-files | while IFS= read -r f; do "
        'mkdir -p "$REPO/$(dirname "$f")"; cp -p "$SITE/$f" "$REPO/$f"; done',
        'echo "isobench: $(comm -23 /tmp/isobench-wheel-files /tmp/isobench-repo-files | '
        'wc -l) compiled/generated files copied from the wheel"',
        'rm -rf "$SITE/vllm" && echo "$REPO" > "$SITE/isobench-vllm-checkout.pth"',
        'cd "$REPO"',
        f'{VENV_PYTHON} -c "import importlib.util as u, sys; o = u.find_spec(\'vllm\').origin; '
        f'sys.exit(0 if o.startswith(\'$REPO\') else \'vllm resolves to \' + o)"',
        'rm -f /tmp/isobench-wheel-files /tmp/isobench-repo-files',
    ]


def wheel_file_name(plan: InstallPlan) -> str:
    """The local wheel's name inside inputs/wheels/ (the folder holds that one file)."""
    assert plan.wheel is not None and plan.wheel.source == "local"
    return plan.wheel.location.rsplit("/", 1)[-1]


def build_env_exports(build: BuildSettings) -> list[str]:
    exports = [f"export {key}={shlex.quote(value)}" for key, value in build.env().items()]
    # an empty deps folder means "not given": let CMake download instead of finding nothing
    if build.fetchcontent_dir:
        exports.append(f'[ -n "$(ls -A {build.fetchcontent_dir} 2>/dev/null)" ] || '
                       f"unset FETCHCONTENT_BASE_DIR")
    return exports


def full_build_command(plan: InstallPlan) -> str:
    """Compile vLLM in place (editable), dependencies as of the commit date."""
    build_reqs = " ".join(DEFAULT_BUILD_REQUIREMENTS)
    lines = _common_prelude() + build_env_exports(plan.build) + [
        "BUILD_REQS=; for f in requirements/build.txt requirements-build.txt; do "
        '[ -f "$f" ] && BUILD_REQS="-r $f" && break; done',
        f'[ -n "$BUILD_REQS" ] || BUILD_REQS="{build_reqs}"',
        _uv_install(plan, "$BUILD_REQS"),
        "RUNTIME_REQS=; for f in requirements/cuda.txt requirements-cuda.txt requirements.txt; "
        'do [ -f "$f" ] && RUNTIME_REQS="-r $f" && break; done',
        _uv_install(plan, "$RUNTIME_REQS"),
        _uv_install(plan, "--no-build-isolation", "-e", "."),
        "ccache --show-stats 2>/dev/null | head -n 5 || true",
    ]
    return "\n".join(lines + _freeze(plan))


def install_command(plan: InstallPlan) -> str:
    if plan.strategy == "cpu_wheel":
        from executor.parts.vllm.cpu_install import cpu_wheel_install_command

        return cpu_wheel_install_command(plan)
    if plan.strategy == "cpu_build":
        from executor.parts.vllm.cpu_install import cpu_build_install_command

        return cpu_build_install_command(plan)
    if plan.strategy == "full_build":
        return full_build_command(plan)
    return wheel_install_command(plan)


def rebuild_command(build: BuildSettings) -> str:
    """What the agent variant runs when its patch touches native paths: recompile in place,
    no dependency changes (the image's frozen set stays)."""
    return "\n".join(["unset VLLM_USE_PRECOMPILED VLLM_PRECOMPILED_WHEEL_LOCATION",
                      *build_env_exports(build),
                      f"uv pip install --python {VENV_PYTHON} --no-deps --no-build-isolation "
                      f"-e ."])
