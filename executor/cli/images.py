"""`isobench images ...`: plan, build, list and prune sandbox images.

`plan` is offline by default: it reads a local mirror when given one (else the catalogue's
metadata) and says, per commit, which strategy, base image, torch, CUDA and tag it would use,
what a build would download, and why. `ls` and `prune` only ever touch images carrying
isobench's own label.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from executor.cli.common import engine_option, image_input_options
from executor.core.errors import UserInputError

console = Console()


def _plans(shas: tuple[str, ...], all_catalogue: bool, mirror: Path | None, wheel_dir,
           deps_dir, gpu_arch: str, probe: bool):
    from executor.parts.catalog import lookup, vllm_core_entries
    from executor.parts.vllm.jobs import VllmBuildOptions, plan_entries

    if not shas and not all_catalogue:
        raise UserInputError("name at least one sha, or --all-catalogue")
    entries = list(vllm_core_entries()) if all_catalogue else [lookup(s) for s in shas]
    if demo := [e for e in entries if e.catalogue != "vllm_core"]:
        raise UserInputError(f"{demo[0].short} is the CPU demo: its image needs no plan "
                             f"(`isobench run-commit {demo[0].short}` builds it)")
    options = VllmBuildOptions(gpu_arch=gpu_arch, wheel_dir=wheel_dir, deps_dir=deps_dir,
                               probe=probe)
    return plan_entries(entries, mirror, options), mirror is not None


def register(group: click.Group) -> None:
    @group.group("images")
    def images() -> None:
        """Plan, build, list and prune sandbox images (content-addressed, reused)."""

    @images.command("base")
    @engine_option
    @click.option("--suite", default="trixie", show_default=True, help="Debian suite.")
    @click.option("--mirror", "deb_mirror", default="http://deb.debian.org/debian",
                  show_default=True, help="Debian mirror (a local one on air-gapped hosts).")
    @click.option("--base-image", help="Use this existing image instead of building one.")
    @click.option("--base-image-tar", type=click.Path(path_type=Path, dir_okay=False,
                                                      exists=True),
                  help="`docker load` this tarball first (air-gapped hosts).")
    def base(suite: str, deb_mirror: str, base_image: str | None,
             base_image_tar: Path | None) -> None:
        """Build (or reuse) the offline Debian base image the CPU demo runs on."""
        from executor.engine.images import BaseImageRecipe, ensure_base_image, resolve_named_base
        from executor.engine.image_store import load_image_archive

        if base_image_tar:
            tags = load_image_archive(base_image_tar)
            console.print(f"loaded {', '.join(tags) or '(untagged)'}")
            base_image = base_image or (tags[0] if tags else None)
        if base_image:
            ref = resolve_named_base(base_image, log=console.print)
        else:
            ref = ensure_base_image(BaseImageRecipe(suite=suite, mirror=deb_mirror),
                                    log=console.print)
        state = "built" if ref.built else "present"
        console.print(f"{ref.tag} {state} ({ref.id[:19]})")

    @images.command("plan")
    @click.argument("shas", nargs=-1)
    @click.option("--all-catalogue", is_flag=True, help="Every vllm_core commit.")
    @click.option("--mirror", type=click.Path(path_type=Path, file_okay=False),
                  help="Local vLLM git mirror (bare is fine) to read requirements from.")
    @click.option("--wheel-dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
                  help="Local folder of vLLM wheels (<dir>/<sha>/vllm-*.whl).")
    @click.option("--deps-dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
                  help="Pre-fetched FETCHCONTENT sources for offline native builds.")
    @click.option("--gpu-arch", default="9.0", show_default=True,
                  help="Target compute capability (9.0: H100/H200).")
    @click.option("--probe", is_flag=True, help="HEAD-probe wheel URLs (off: fully offline).")
    @click.option("--json", "as_json", is_flag=True, help="Print the plans as JSON.")
    @click.option("--target-device", type=click.Choice(["cuda", "cpu"]), default="cuda",
                  show_default=True, help="cpu: whether and how each commit runs on the CPU "
                                          "track (needs --mirror).")
    def plan(shas, all_catalogue, mirror, wheel_dir, deps_dir, gpu_arch, probe, as_json,
             target_device):
        """Say how each commit's images would be built, and why (no build, no download)."""
        if target_device == "cpu":
            from executor.cli.cpu_plan import print_cpu_plans

            print_cpu_plans(shas, all_catalogue, mirror, wheel_dir, as_json)
            return
        plans, mirrored = _plans(shas, all_catalogue, mirror, wheel_dir, deps_dir, gpu_arch,
                                 probe)
        if as_json:
            click.echo(json.dumps([p.model_dump(mode="json") for p in plans], indent=1))
            return
        where = f"mirror {mirror}" if mirrored else "catalogue metadata only, no mirror"
        table = Table(title=f"image plans ({where}); --json for every reason")
        for column in ("commit", "date", "bench", "variant", "strategy", "torch", "CUDA",
                       "tag", "why"):
            table.add_column(column, overflow="fold")
        counts: Counter[tuple[str, str]] = Counter()
        for p in plans:
            for variant in (p.base, p.human):
                install = variant.install
                counts[(variant.role, install.strategy)] += 1
                env = install.environment
                table.add_row(
                    p.entry_short if variant.role == "base" else "",
                    str(install.commit_date.date()) if install.commit_date else "?",
                    ("ok" if p.runnable else "no") if variant.role == "base" else "",
                    variant.role, install.strategy,
                    env.torch + ("" if env.torch_source == "requirements" else "*"),
                    env.cuda, variant.tag.rsplit("-", 1)[-1], _short_why(install))
        console.print(table)
        for role in ("base", "human"):
            parts = ", ".join(f"{s} {counts[(role, s)]}" for s in
                              ("own_wheel", "nearest_wheel", "full_build"))
            console.print(f"{role:>5}: {parts}")
        runnable = sum(p.runnable for p in plans)
        console.print(f"{len(plans)} commits, {runnable} with a runnable benchmark, "
                      f"{len(plans) - runnable} not runnable; * = torch from the date table")

    @images.command("build")
    @engine_option
    @click.argument("shas", nargs=-1, required=True)
    @click.option("--mirror", "--repo", "mirror", required=True,
                  type=click.Path(path_type=Path, file_okay=False),
                  help="Local vLLM git repository or mirror (the tree is exported from it).")
    @image_input_options
    @click.option("--log-dir", type=click.Path(path_type=Path, file_okay=False),
                  default=Path("state/build-logs"), show_default=True)
    def build(shas, mirror, log_dir, vllm):
        """Build (or reuse) sandbox images: a catalogued commit's base and human images, or,
        for any other commit of the repository, that commit's own image (plan and resolved
        packages recorded in LOG_DIR/image-<sha>.json)."""
        from executor.parts.catalog import NotCatalogued, lookup
        from executor.runs.resolve import on_target_device, resolve_job
        from executor.parts.vllm.jobs import ensure_vllm_job_images

        for sha in shas:
            try:
                lookup(sha)
            except NotCatalogued:
                _build_one_commit(sha, mirror, vllm, log_dir)
                continue
            job = resolve_job(sha, repo=str(mirror) if mirror else None)
            if job.task.builder == "vllm":
                job = on_target_device(job, vllm.target_device)
            if job.task.builder != "vllm":
                raise UserInputError(f"{sha} is not a vLLM catalogue commit; `isobench "
                                     f"run-commit {sha}` builds its images")
            _, refs, _ = ensure_vllm_job_images(job, vllm, log_dir, console.print)
            for role, ref in refs.items():
                console.print(f"{job.item_id} {role}: {ref.tag} "
                              f"{'built' if ref.built else 'reused'} in {ref.seconds:.0f}s")

    @images.command("ls")
    @engine_option
    def ls() -> None:
        """isobench's images (labelled), with size and age."""
        from executor.engine.image_store import isobench_images

        table = Table()
        for column in ("tag", "kind", "size", "age"):
            table.add_column(column)
        now = time.time()
        for image in isobench_images():
            created = image.created if image.created is not None else now
            table.add_row(image.name, image.kind, f"{image.size / 1e9:.2f} GB",
                          _age(now - created))
        console.print(table)

    @images.command("prune")
    @engine_option
    @click.option("--keep-days", type=click.FloatRange(0), default=14, show_default=True,
                  help="Keep images younger than this.")
    @click.option("--max-gb", type=click.FloatRange(0), default=None,
                  help="Then remove oldest first until isobench's images fit in this.")
    @click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
    def prune(keep_days: float, max_gb: float | None, dry_run: bool) -> None:
        """Remove old isobench images (only images with isobench's label, never others)."""
        from executor.engine.image_store import isobench_images, remove_image
        from executor.engine.image_gc import choose_prunable

        rows = [(image.id, image.name, image.created or 0.0, image.size)
                for image in isobench_images()]
        doomed = choose_prunable(rows, keep_days=keep_days, max_gb=max_gb, now=time.time())
        freed = 0
        for image_id, name, _, size in doomed:
            if dry_run:
                console.print(f"would remove {name} ({size / 1e9:.2f} GB)")
                freed += size
                continue
            kept = remove_image(image_id)
            if kept is None:
                console.print(f"removed {name}")
                freed += size
            else:  # in use by a container: keep it
                console.print(f"kept {name}: {kept}")
        console.print(f"{'would free' if dry_run else 'freed'} {freed / 1e9:.2f} GB "
                      f"({len(doomed)} of {len(rows)} isobench images)")


def _build_one_commit(sha: str, repo: Path, options, log_dir: Path) -> None:
    from executor.parts.vllm.commit_image import build_commit_image

    started = time.monotonic()
    done = build_commit_image(sha, repo, options, log_dir, console.print)
    state = "built" if done.image.built else "reused"
    console.print(f"{done.sha[:12]}: {done.image.tag} {state} in "
                  f"{time.monotonic() - started:.0f}s ({done.plan.strategy}, torch "
                  f"{done.plan.environment.torch}, Python {done.plan.environment.python}, "
                  f"{len(done.packages)} packages as of {done.plan.exclude_newer}); "
                  f"manifest {done.manifest}")


def _short_why(install) -> str:
    """The first reason, cut to its decisive part (the table must fit a terminal)."""
    if install.strategy == "own_wheel" and install.wheel is not None:
        return f"{install.wheel.era} wheel, {install.wheel.status}"
    if install.strategy == "nearest_wheel" and install.wheel is not None:
        return f"wheel of {install.wheel.sha[:8]}, no native change"
    detail = next((r for r in install.reasons[1:] if not r.startswith("no mirror")), "")
    return detail.split(":")[0] if detail.startswith("nearest wheel") else detail[:48]


def _age(seconds: float) -> str:
    return str(dt.timedelta(seconds=int(seconds))).split(".")[0]
