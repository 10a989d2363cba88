"""Where a vLLM image can be built without a registry: the offline Debian base, and PyPI's torch.

A CUDA devel image is needed only to compile (nvcc). The wheel strategies compile nothing, and
torch's nvidia-* wheels bring the CUDA runtime, so they can start from the offline base that
`isobench images base` makes with debootstrap + `docker import`. Its Python is the suite's own
python3 (facts.DEBIAN_SUITE_PYTHON), so the suite is chosen by the Python the commit allows and
its torch pin has wheels for; when no suite fits, the plan stops and names the Python needed.

`--torch-index pypi` takes torch from PyPI (hosts that reach PyPI but not download.pytorch.org);
the plan says whether PyPI's build is the CUDA the pin is paired with.
"""

from __future__ import annotations

from executor.core.errors import UserInputError
from executor.parts.vllm import facts
from executor.parts.vllm.environment import Environment, python_allowed, _version_tuple

PYTORCH_INDEX = "pytorch"
PYPI = "pypi"


def offline_base_tag(suite: str) -> str:
    """The content tag of the offline base of `suite` (built by `isobench images base`)."""
    from executor.engine.images import BaseImageRecipe

    return BaseImageRecipe(suite=suite).tag


def _torch_has_wheels_for(torch: str, python: str) -> bool:
    newest = facts.TORCH_MAX_PYTHON.get(torch)
    return newest is None or _version_tuple(python) <= _version_tuple(newest)


def choose_suite(env: Environment) -> tuple[str, str, str]:
    """(suite, python, reason): the oldest suite whose python3 the commit and its torch accept.

    Oldest first: an old commit's dependencies (numpy<2, old xformers) have wheels for the older
    Python, and nothing in the vLLM range needs the newest.
    """
    refused: list[str] = []
    for suite, python in sorted(facts.DEBIAN_SUITE_PYTHON.items(),
                                key=lambda item: _version_tuple(item[1])):
        if env.python_requires and not python_allowed(python, env.python_requires):
            refused.append(f"{suite} ({python}): outside requires-python "
                           f"{env.python_requires!r}")
            continue
        if not _torch_has_wheels_for(env.torch, python):
            refused.append(f"{suite} ({python}): torch {env.torch} has no cp"
                           f"{python.replace('.', '')} wheels (newest: "
                           f"{facts.TORCH_MAX_PYTHON[env.torch]})")
            continue
        return suite, python, (f"offline base: Debian {suite}, its python3 {python} is inside "
                               f"requires-python {env.python_requires or '(none)'} and torch "
                               f"{env.torch} has wheels for it")
    raise UserInputError(
        f"no offline base fits: this commit needs Python {needed_python(env)} "
        f"(requires-python {env.python_requires or 'unknown'}, torch {env.torch}); the offline "
        f"suites have {', '.join(f'{s} {p}' for s, p in facts.DEBIAN_SUITE_PYTHON.items())} "
        f"({'; '.join(refused)}). Build on a CUDA image instead (omit --offline-base)")


def needed_python(env: Environment) -> str:
    """The Python versions the commit and its torch pin both accept, said in words."""
    fits = [p for p in ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
            if (not env.python_requires or python_allowed(p, env.python_requires))
            and _torch_has_wheels_for(env.torch, p)]
    return f"{fits[0]}-{fits[-1]}" if len(fits) > 1 else (fits[0] if fits else "(none known)")


def with_torch_index(env: Environment, torch_index: str | None) -> Environment:
    """The environment with torch taken from `torch_index` (pytorch | pypi | a URL)."""
    if torch_index in (None, PYTORCH_INDEX):
        return env
    reasons = list(env.reasons)
    if torch_index == PYPI:
        url = facts.PYPI_INDEX
        pypi_cuda = facts.PYPI_TORCH_CUDA.get(env.torch)
        if pypi_cuda == env.cuda:
            reasons.append(f"torch from PyPI: its {env.torch} is the CUDA {env.cuda} build "
                           f"vLLM pairs with this pin")
        else:
            reasons.append(f"note: torch from PyPI is the CUDA {pypi_cuda or '?'} build of "
                           f"{env.torch}, vLLM's kernels were built for {env.cuda}: imports "
                           f"work, a GPU host should use the PyTorch index")
    else:
        url = torch_index
        reasons.append(f"torch from {url} (operator's index)")
    return env.model_copy(update={"torch_index_url": url, "reasons": reasons})


def on_offline_base(env: Environment) -> Environment:
    """The environment rebased on the offline Debian base whose Python fits the commit."""
    suite, python, why = choose_suite(env)
    reasons = [r for r in env.reasons
               if not r.startswith(("base image ", f"Python {env.python}:"))]
    reasons += [why, "no nvcc on this base: wheel strategies only (the CUDA runtime comes "
                     "from torch's nvidia-* wheels)"]
    return env.model_copy(update={"base_kind": "debian", "debian_suite": suite,
                                  "python": python, "base_image": offline_base_tag(suite),
                                  "reasons": reasons})
