"""A chat webhook for tests: an HTTP server on 127.0.0.1 that records every POST."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """A webhook on 127.0.0.1: records every POST; answers the statuses queued in
    ``answers`` (then 200). An error answer echoes the request path, as a careless
    webhook might: the token in it must not reach redline's error. Use it as a context
    manager (serves inside the block)."""

    def __init__(self, token: str = "T0RECV/B0RECV/test-token"):
        self.requests: list[tuple[str, dict]] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, json.loads(body)))
                status = receiver.answers.pop(0) if receiver.answers else 200
                reply = b"ok" if status < 300 else f"boom at {self.path}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/{token}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def texts(self) -> list[str]:
        return [body["text"] for _, body in self.requests]
