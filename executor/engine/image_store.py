"""What the engine holds of isobench's images: list, label, move (save, load, export a folder),
read one file, remove. Engine-neutral: the client is the current engine's (engine/chosen.py)."""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.errors import ImageBuildError, UserInputError
from executor.engine.chosen import engine_client
from executor.engine.docker import APIError, ImageNotFound, NotFound
from executor.core.tarballs import safe_extract

from executor.engine.images import LABEL_CREATED, LABEL_IMAGE, find_image


def export_image_path(tag: str, path: str, dest: Path,
                      client=None) -> None:
    """Copy the directory `path` of image `tag` to the host directory `dest` (which must not
    exist), atomically: a temp dir beside it, renamed when complete, so a reader sees the whole
    tree or none of it, and two workers exporting at once both end with one complete copy.

    Symlinks are kept as they are (a venv's bin/python points at the image's interpreter, which
    is where the sandbox has it too); this is our own image, so the 'tar' filter is enough.
    """
    client = client or engine_client(timeout=None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    container = client.containers.create(tag, command=["true"],
                                         labels={LABEL_IMAGE: "export"})
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        chunks, _ = container.get_archive(path.rstrip("/") + "/.")
        with tempfile.TemporaryFile() as spool:  # bundles are hundreds of MB: not in memory
            for chunk in chunks:
                spool.write(chunk)
            spool.seek(0)
            with tarfile.open(fileobj=spool) as tar:
                safe_extract(tar, tmp, mode="tar")
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():
                raise  # not "someone else finished first"
    finally:
        container.remove(force=True)
        shutil.rmtree(tmp, ignore_errors=True)


def load_image_archive(path: Path, client=None) -> list[str]:
    """`docker load` an image tarball (air-gapped hosts); returns the tags it brought.

    The engine's answer is read here rather than by docker-py's `images.load`: podman names
    all the images of one archive on one line (`Loaded image: a,b,c`), which docker-py takes
    for one name."""
    client = client or engine_client(timeout=None)
    names: list[str] = []
    try:
        with open(path, "rb") as archive:
            for event in client.api.load_image(archive):
                if "errorDetail" in event or "error" in event:
                    detail = event.get("errorDetail", {}).get("message") or event.get("error")
                    raise UserInputError(f"{path} is not a loadable image archive: {detail}")
                loaded = re.match(r"Loaded image(?: ID)?: (.+)", event.get("stream", "").strip())
                if loaded:
                    names += [name.strip() for name in loaded.group(1).split(",")
                              if name.strip()]
    except APIError as exc:
        raise UserInputError(f"{path} is not a loadable image archive: "
                             f"{exc.explanation or exc}") from exc
    except OSError as exc:
        raise UserInputError(f"cannot read image archive {path}: "
                             f"{exc.strerror or exc}") from exc
    tags: list[str] = []
    for name in names:
        for tag in map(short_tag, client.images.get(name).tags):
            if tag not in tags:
                tags.append(tag)
    return tags


def short_tag(tag: str) -> str:
    """A tag as isobench names it: podman lists local images under the registry it assumed
    (`docker.io/isobench/...` from an import or build, `localhost/...` from a load)."""
    for prefix in ("docker.io/", "localhost/"):
        if tag.startswith(prefix + "isobench/"):
            return tag[len(prefix):]
    return tag


class ImageInfo(BaseModel):
    """One of isobench's images (labelled `isobench.image`), as `images ls|prune` show it."""

    id: str = Field(description="Image id.")
    name: str = Field(description="Its tags, or the short id when untagged.")
    kind: str = Field(description="The isobench.image label: base, sandbox, agent, ...")
    created: float | None = Field(default=None, description="isobench.created (epoch s).")
    size: int = Field(default=0, description="Bytes.")


def isobench_images(client=None) -> list[ImageInfo]:
    """Every image with isobench's label on this engine (never any other image)."""
    found = (client or engine_client()).images.list(filters={"label": LABEL_IMAGE})
    return [ImageInfo(id=image.id, name=", ".join(map(short_tag, image.tags)) or image.short_id,
                      kind=(image.labels or {}).get(LABEL_IMAGE, "?"),
                      created=float(c) if (c := (image.labels or {}).get(LABEL_CREATED))
                      else None, size=int(image.attrs.get("Size", 0))) for image in found]


def remove_image(image_id: str, client=None) -> str | None:
    """Remove an image; None when done, else why the engine kept it (in use by a container)."""
    try:
        (client or engine_client()).images.remove(image_id, noprune=False)
        return None
    except APIError as exc:
        return str(exc.explanation or exc)


def image_labels(tag: str, client=None) -> dict[str, str] | None:
    """An image's labels (the sandbox recipe is one), or None when the engine lacks it."""
    client = client or engine_client()
    try:
        return dict(client.images.get(tag).labels or {})
    except ImageNotFound:
        return None


def save_images(tags: list[str], dest: Path, client=None) -> None:
    """`docker save` several images into one archive (shared layers stored once), atomically."""
    client = client or engine_client(timeout=None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # docker-py's get_image takes one name; the engine's /images/get takes many, which is what
    # lets sandbox images share their base layers in one archive.
    response = client.api._get(client.api._url("/images/get"), params={"names": tags},
                               stream=True)
    client.api._raise_for_status(response)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in response.iter_content(chunk_size=1 << 20):
                out.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def image_ids(tags: list[str], client=None
              ) -> dict[str, str | None]:
    """tag -> image id on this engine (None where absent)."""
    client = client or engine_client()
    return {tag: (ref.id if (ref := find_image(client, tag)) else None) for tag in tags}


def remove_images(tags: list[str], client=None) -> list[str]:
    """Remove these tags (the images of one run, never others); returns the ones removed."""
    client = client or engine_client()
    removed = []
    for tag in tags:
        try:
            client.images.remove(tag, force=True)
            removed.append(tag)
        except ImageNotFound:
            continue
    return removed


def engine_networks(client=None) -> set[str]:
    """Names of the networks this engine has (an engine started with --bridge none has no
    'bridge')."""
    client = client or engine_client()
    return {network.name for network in client.networks.list()}


def read_image_file(tag: str, path: str, client=None) -> str:
    """The text of one file inside image `tag` (no container is started; a stopped one is
    created for the copy and removed)."""
    client = client or engine_client(timeout=None)
    container = client.containers.create(tag, command=["true"],
                                         labels={LABEL_IMAGE: "export"})
    try:
        chunks, _ = container.get_archive(path)
        with tempfile.TemporaryFile() as spool:
            for chunk in chunks:
                spool.write(chunk)
            spool.seek(0)
            with tarfile.open(fileobj=spool) as tar:
                member = tar.next()
                stream = tar.extractfile(member) if member is not None else None
                if stream is None:
                    raise ImageBuildError(f"{path} in {tag} is not a file")
                return stream.read().decode("utf-8", "replace")
    except NotFound as exc:
        raise ImageBuildError(f"{tag} has no {path}") from exc
    finally:
        container.remove(force=True)


class LayerSizes(BaseModel):
    """How an image's bytes split between its base and the layers built on top of it."""

    total_bytes: int = Field(description="Everything the image needs on disk.")
    base_bytes: int = Field(description="The base image it was built FROM (shared).")
    layers: list[tuple[str, int]] = Field(
        default_factory=list, description="(instruction, bytes) of each layer above the base, "
                                          "oldest first.")


def layer_sizes(tag: str, base_tag: str, client=None
                ) -> LayerSizes:
    """Sizes of `tag`'s layers above `base_tag` (`docker history`, empty layers left out)."""
    client = client or engine_client()
    image, base = client.images.get(tag), client.images.get(base_tag)
    base_ids = {row["Id"] for row in base.history() if row["Id"] != "<missing>"}
    above: list[tuple[str, int]] = []
    for row in image.history():  # newest first
        if row["Id"] in base_ids:
            break
        if row["Size"]:
            above.append((row["CreatedBy"][-160:], int(row["Size"])))
    return LayerSizes(total_bytes=int(image.attrs["Size"]), base_bytes=int(base.attrs["Size"]),
                      layers=list(reversed(above)))
