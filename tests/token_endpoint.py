"""An OAuth 2.0 token introspection endpoint (RFC 7662) on loopback, for Dovecot's oauth2 passdb.

The test decides which access tokens are valid and for whom; Dovecot POSTs
`token=...` and gets `{"active": true, "username": ...}` or `{"active": false}`,
as an authorisation server answers for a token that expired or was revoked.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class TokenEndpoint:
    """Valid tokens and the users they stand for; `asked` counts introspection requests."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.asked = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
                token = (form.get("token") or [""])[0]
                endpoint.asked += 1
                user = endpoint.tokens.get(token)
                answer = {"active": True, "username": user} if user else {"active": False}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reads `asked` instead."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/introspect"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TokenEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token_endpoint() -> Iterator[TokenEndpoint]:
    """A fresh introspection endpoint that knows no token yet."""
    with TokenEndpoint() as endpoint:
        yield endpoint
