"""Headless Chromium for tests: open a page from file://, take a screenshot, read the DOM and
everything the page wrote to its console.

Chromium's own logging (`--enable-logging=stderr`) prints each console message and each
uncaught exception as an `INFO:CONSOLE` line, whatever the page's origin; that needs no driver,
no DevTools client and no network. `tests/unit/test_browser_helper.py` proves the capture on a
page that does log errors, so "no console lines" means none, not a blind spot.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

BINARIES = ("chromium", "chromium-browser", "google-chrome")
CONSOLE = re.compile(r":CONSOLE[^\]]*\]\s*(.*)")
TIMEOUT_S = 120


class PageView(BaseModel):
    """What a headless browser saw."""

    dom: str = Field(description="The DOM after load (--dump-dom).")
    console: list[str] = Field(description="Console messages and uncaught errors.")
    screenshot: Path | None = Field(default=None, description="PNG, when asked for.")


def chromium() -> str | None:
    return next((path for name in BINARIES if (path := shutil.which(name))), None)


def in_ci() -> bool:
    """`.ci/run` sets ISOBENCH_CI: there a missing browser is a failure, not a skip."""
    return os.environ.get("ISOBENCH_CI") == "1"


def _run(binary: str, args: list[str], profile: str) -> subprocess.CompletedProcess:
    base = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)


def open_page(page: Path, screenshot: Path | None = None, size: str = "1280,1600") -> PageView:
    binary = chromium()
    if binary is None:
        raise RuntimeError("no chromium on PATH")
    url = page.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="isobench-chromium-") as profile:
        dom = _run(binary, ["--dump-dom", url], profile)
        console = [m.group(1) for line in dom.stderr.splitlines()
                   if (m := CONSOLE.search(line))]
        if screenshot is not None:
            shot = _run(binary, [f"--window-size={size}", f"--screenshot={screenshot}", url],
                        profile)
            console += [m.group(1) for line in shot.stderr.splitlines()
                        if (m := CONSOLE.search(line))]
            if not screenshot.is_file():
                raise RuntimeError(f"chromium wrote no screenshot: {shot.stderr[-500:]}")
    if dom.returncode != 0 or "<html" not in dom.stdout:
        raise RuntimeError(f"chromium failed ({dom.returncode}): {dom.stderr[-500:]}")
    return PageView(dom=dom.stdout, console=console, screenshot=screenshot)
