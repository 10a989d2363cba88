"""The key check against a real local HTTP server: an HTML error page is one line."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from executor.core.errors import UserInputError
from executor.parts.gateway.upstream import check_upstream
from executor.parts.upstream import Upstream

PAGE = (b"<!DOCTYPE html>\n<html>\n<head>\n<title>501 Not Implemented</title>\n</head>\n"
        b"<body>\n<h1>Not Implemented</h1>\n<p>GET /v1/models is not supported.</p>\n"
        b"</body>\n</html>\n")


class _NotImplemented(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(501)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


def test_a_501_html_page_is_reported_in_one_line():
    server = HTTPServer(("127.0.0.1", 0), _NotImplemented)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        upstream = Upstream(base_url=f"http://127.0.0.1:{server.server_port}/v1",
                            api_key="sk-test")
        with pytest.raises(UserInputError) as caught:
            check_upstream(upstream)
    finally:
        server.shutdown()
        server.server_close()
    message = str(caught.value)
    assert "\n" not in message and "<" not in message, message
    assert "HTTP 501" in message and "501 Not Implemented" in message
