"""SWE-bench-style predictions: the agent patches of a run as `predictions.jsonl`, and back.

One JSON object per line: `instance_id`, `model_name_or_path`, `model_patch` (SWE-bench's
three fields; their harness ignores others). isobench adds `human_commit`, so a prediction finds
its commit even when instance ids differ between plans. Read back, predictions are the agent
patches `isobench bench` and `isobench run` measure without running an agent again. A directory
works too: any run directory (isobench's or ISO-Bench's) holding `<item>/model_patch.diff`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from executor.core.errors import UserInputError
from executor.core.journal import write_bytes_atomic
from executor.records.state import JOURNAL_NAME, PATCH_NAME, read_json
from executor.core.task import PlanItem

PREDICTIONS_NAME = "predictions.jsonl"
MAX_DEPTH = 6  # STATE/runs/<task>/<agent>/<model>/<run_id>/<item>


class Prediction(BaseModel):
    """One instance's patch, as SWE-bench's harness reads it."""

    instance_id: str = Field(description="Item id (ISO-Bench: 'vllm-project__vllm-<sha7>').")
    model_name_or_path: str = Field(description="Who wrote the patch (agent/model).")
    model_patch: str = Field(description="The unified diff, exactly as recorded.")
    human_commit: str | None = Field(default=None, description="The human commit it targets "
                                                               "(isobench's addition).")

    @property
    def patch_bytes(self) -> bytes:
        return self.model_patch.encode()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.patch_bytes).hexdigest()

    def matches(self, item_id: str, human_sha: str) -> bool:
        """Same item id, or the same human commit (full sha, or a prefix of at least 7)."""
        if self.instance_id == item_id:
            return True
        candidates = [self.human_commit or "", self.instance_id.rsplit("-", 1)[-1]]
        return any(len(c) >= 7 and human_sha and (human_sha.startswith(c)
                                                  or c.startswith(human_sha))
                   for c in candidates)


def write_predictions(path: Path, predictions: list[Prediction]) -> None:
    text = "".join(p.model_dump_json(exclude_none=True) + "\n" for p in predictions)
    write_bytes_atomic(path, text.encode(), shared=True)


def read_predictions(path: Path) -> list[Prediction]:
    """A predictions.jsonl file, or the patches of a run directory (empty patches skipped)."""
    if path.is_dir():
        return _from_directory(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read predictions {path}: {exc}") from exc
    found = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            found.append(Prediction.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise UserInputError(f"{path}:{number}: not a prediction "
                                 f"({'.'.join(map(str, first['loc']))}: {first['msg']})") \
                from exc
    return [p for p in found if p.model_patch.strip()]


def _from_directory(root: Path) -> list[Prediction]:
    found = []
    patches = sorted(p for depth in range(MAX_DEPTH + 1)
                     for p in root.glob("/".join(["*"] * depth + [PATCH_NAME])))
    for patch in patches:
        item_dir = patch.parent
        if item_dir.name.startswith("attempt-"):
            continue  # the item's own copy (its last patch) is the one to measure
        data = patch.read_bytes()
        if not data.strip():
            continue
        journal = read_json(item_dir / JOURNAL_NAME)
        journal = journal if isinstance(journal, dict) else {}
        commits = journal.get("commits") or {}
        who = "/".join(str(journal[k]) for k in ("agent", "model") if journal.get(k)) \
            or "/".join(item_dir.parts[-4:-2])
        found.append(Prediction(instance_id=str(journal.get("item_id") or item_dir.name),
                                model_name_or_path=who,
                                model_patch=data.decode("utf-8", "replace"),
                                human_commit=commits.get("human") or None))
    return found


def load_predictions(path: Path) -> list[Prediction]:
    """read_predictions, or one line of bad input saying why there is nothing to measure."""
    if not path.exists():
        raise UserInputError(f"--predictions {path}: no such file or directory")
    found = read_predictions(path)
    if not found:
        raise UserInputError(f"--predictions {path}: no non-empty patch in it")
    return found


def prediction_for(predictions: list[Prediction], item_id: str, human_sha: str) -> Prediction:
    """The one prediction of this commit; bad input when none or several differ."""
    hits = [p for p in predictions if p.matches(item_id, human_sha)]
    distinct = {p.sha256 for p in hits}
    if not hits:
        raise UserInputError(f"no prediction for {item_id} (human {human_sha[:12]}) among "
                             f"{len(predictions)}")
    if len(distinct) > 1:
        raise UserInputError(f"{len(distinct)} different patches for {item_id}: select one "
                             f"(export one run, or give --patch)")
    return hits[0]


def plan_patches(predictions: list[Prediction], items: list[PlanItem]
                 ) -> tuple[dict[str, Prediction], list[str]]:
    """(item id -> its prediction, ids of plan items with none)."""
    chosen, missing = {}, []
    for item in items:
        hits = [p for p in predictions if p.matches(item.item_id, item.human)]
        if hits:  # several (a directory of many invocations): the latest one read
            chosen[item.item_id] = hits[-1]
        else:
            missing.append(item.item_id)
    return chosen, missing
