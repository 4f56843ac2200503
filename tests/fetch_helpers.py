"""A local HTTP server (127.0.0.1, port 0) with Range support for the `data fetch` tests."""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    """GET with Range support; the server's ``cut`` sends only the first n bytes of a body."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start, rng = 0, self.headers.get("Range")
        if rng and not srv.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        chunk = chunk[: srv.cut.pop(self.path, len(chunk))]
        self.wfile.write(chunk)
        srv.sent[self.path] += len(chunk)

    def log_message(self, *args: object) -> None:
        pass


def start_server() -> ThreadingHTTPServer:
    """A running server; ``srv.files`` maps URL paths to bytes, ``srv.url`` is its base URL."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.cut, srv.sent, srv.requests = {}, {}, defaultdict(int), []
    srv.ignore_range = False
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def stop_server(srv: ThreadingHTTPServer) -> None:
    srv.shutdown()
    srv.server_close()


def checksums_of(data: bytes) -> dict[str, str]:
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "git_blob_sha1": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
    }
