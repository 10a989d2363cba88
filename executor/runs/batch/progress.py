"""Live progress of a batch: done, running, failed, retries and an ETA, drawn with rich.

Events arrive on the dispatcher's thread, so the counts need no locking. On a terminal the bar
redraws in place; elsewhere (CI logs) rich prints nothing live and the per-item lines remain.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from executor.runs.batch.base import BatchEvent, EventKind, ItemOutcome
from executor.core.journal import RunStatus


class BatchProgress:
    """An Observer that draws a progress bar and prints one line per finished attempt."""

    def __init__(self, total: int, console: Console | None = None, *, title: str = "batch"):
        self.console = console or Console(stderr=True)
        self.total = total
        self.done = self.failed = self.retries = 0
        self.running: set[str] = set()
        self._progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
            MofNCompleteColumn(), TextColumn("running {task.fields[running]}"),
            TextColumn("[red]failed {task.fields[failed]}"),
            TextColumn("retries {task.fields[retries]}"), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), console=self.console, transient=False)
        self._task = self._progress.add_task(title, total=total, running=0, failed=0,
                                             retries=0)

    def __enter__(self) -> "BatchProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def event(self, event: BatchEvent) -> None:
        if event.kind == EventKind.STARTED:
            self.running.add(event.item_id)
        elif event.kind == EventKind.FINISHED:
            self.running.discard(event.item_id)
            self._line(event)
        elif event.kind == EventKind.RETRY:
            self.retries += 1
        elif event.kind in (EventKind.FINAL, EventKind.SKIPPED):
            # Skipped items were final before this invocation (done) or are held elsewhere.
            if event.outcome in (ItemOutcome.SUCCEEDED, ItemOutcome.FAILED):
                self.done += 1
                self.failed += event.outcome == ItemOutcome.FAILED
        self._progress.update(self._task, completed=self.done, running=len(self.running),
                              failed=self.failed, retries=self.retries)

    def _line(self, event: BatchEvent) -> None:
        style = "green" if event.status == RunStatus.SUCCESS else "yellow"
        where = f" gpu {','.join(event.gpu_ids)}" if event.gpu_ids else ""
        self.console.print(f"[{style}]{event.item_id}[/] attempt {event.attempt}: "
                           f"{event.detail}{where}", highlight=False)
