"""A cancellation token shared by batches and the one-commit pipeline.

Ctrl-C reaches only the main thread; batch workers run the pipeline on other threads (or other
machines). The batch sets this token; the pipeline registers a callback on it that stops its
item's sandboxes, and checks it between phases. Lives apart from both so that neither imports
the other for it.
"""

from __future__ import annotations

import threading
from typing import Callable, Protocol


class CancelToken(Protocol):
    """What the pipeline needs of a token: ask, and be called back."""

    def is_set(self) -> bool: ...

    def on_set(self, callback: Callable[[], None]) -> None: ...


class Cancel:
    """A cancellation token: an Event that also runs callbacks (to wake a waiting dispatcher,
    to stop a running item's sandboxes)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def set(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def on_set(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the token is set (at once if it already is)."""
        with self._lock:
            self._callbacks.append(callback)
            fire = self._event.is_set()
        if fire:
            callback()
