"""Which isobench images to remove: old ones first, then oldest until under a size budget.

Pure selection over (id, name, created, size) rows, so the rule is tested without an engine;
the CLI feeds it only images carrying isobench's label, so no other image is ever a candidate.
"""

from __future__ import annotations

DAY_S = 86400

Row = tuple[str, str, float, int]  # image id, display name, created (epoch s), size (bytes)


def choose_prunable(rows: list[Row], *, keep_days: float, max_gb: float | None, now: float
                    ) -> list[Row]:
    """Rows older than keep_days, plus the oldest others while the rest exceed max_gb."""
    by_age = sorted(rows, key=lambda row: row[2])
    doomed = [row for row in by_age if now - row[2] > keep_days * DAY_S]
    if max_gb is not None:
        kept = [row for row in by_age if row not in doomed]
        total = sum(row[3] for row in kept)
        budget = max_gb * 1e9
        for row in kept:
            if total <= budget:
                break
            doomed.append(row)
            total -= row[3]
    return doomed
