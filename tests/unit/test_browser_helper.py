"""The browser helper sees console errors (so the report test's "none" means none)."""

from __future__ import annotations

import pytest

from tests.browser import chromium, in_ci, open_page

pytestmark = pytest.mark.skipif(chromium() is None and not in_ci(),
                                reason="chromium is not installed (.ci/run installs it)")


def test_console_errors_and_screenshot_are_captured(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><body><p id='x'>hello</p><script>"
                    "console.error('boom-console'); notDefinedAnywhere();</script></body></html>")
    view = open_page(page, tmp_path / "shot.png", size="400,300")
    assert any("boom-console" in line for line in view.console)
    assert any("notDefinedAnywhere is not defined" in line for line in view.console)
    assert '<p id="x">hello</p>' in view.dom
    assert view.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
