"""The live order dashboard of notebook 09: a small web page on 127.0.0.1 fed by Redis Pub/Sub.

:class:`Dashboard` serves, from a thread in the kernel (stdlib ``http.server``):

- ``GET /`` the page (:data:`helpers.dashboard_page.PAGE`: inline HTML, CSS and JavaScript, no
  request to any other host);
- ``GET /snapshot`` the view as Redis holds it now (JSON), read once when the page loads;
- ``GET /events`` a Server-Sent Events stream: every Pub/Sub notification the processor publishes
  on the view's channel is forwarded to the browser as one ``data:`` line.

The page only reads: any other method gets ``405`` (data flows Kafka -> processor -> Redis -> page).
Each event stream waits on Redis with a 1 s timeout, so :meth:`Dashboard.stop` ends it promptly.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import clients, pipeline
from .dashboard_page import PAGE

_RUNNING: list[Dashboard] = []
READ_ONLY = "read-only: data flows Kafka -> processor -> Redis -> this page, never back"


class Dashboard:
    """The page server for one view; ``.url``, ``.stats`` (clients, events sent), ``.stop()``."""

    def __init__(self, redis_url: str, view: str, *, title: str = "Orders", host: str = "127.0.0.1",
                 port: int = 0):
        self.redis_url, self.view, self.title = redis_url, view, title
        self.keys = pipeline.view_keys(view)
        self.stopping = threading.Event()
        self.stats = {"streams_opened": 0, "streams_open": 0, "events_sent": 0, "snapshots": 0,
                      "refused_writes": 0}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def _count(self, name: str, by: int = 1) -> None:
        with self._lock:
            self.stats[name] += by

    def snapshot(self) -> dict:
        """The view now, plus the top sellers in order (what ``/snapshot`` answers)."""
        view = pipeline.read_view(clients.redis_client(self.redis_url), self.view)
        view["top"] = sorted(view["sold"], key=lambda p: (-view["sold"][p], p))
        view["title"] = self.title
        return view

    def _handler(self):
        board = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep the notebook quiet
                pass

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/":
                    self._send(200, PAGE.encode(), "text/html; charset=utf-8")
                elif path == "/snapshot":
                    board._count("snapshots")
                    self._send(200, json.dumps(board.snapshot()).encode(), "application/json")
                elif path == "/events":
                    board._stream(self)
                else:
                    self._send(404, b"not found", "text/plain")

            def _refuse(self) -> None:
                board._count("refused_writes")
                self._send(405, READ_ONLY.encode(), "text/plain")

            do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

        return Handler

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        """Forward the view's Pub/Sub channel to one browser as Server-Sent Events."""
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-store")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        r = clients.redis_client(self.redis_url)
        sub = r.pubsub(ignore_subscribe_messages=True)
        sub.subscribe(self.keys["channel"])
        self._count("streams_opened")
        self._count("streams_open")
        last_write = time.monotonic()
        try:
            handler.wfile.write(b"retry: 1000\n: connected\n\n")
            handler.wfile.flush()
            while not self.stopping.is_set():
                msg = sub.get_message(timeout=1.0)
                if msg and msg["type"] == "message":
                    handler.wfile.write(f"data: {msg['data']}\n\n".encode())
                    self._count("events_sent")
                elif time.monotonic() - last_write > 5:
                    handler.wfile.write(b": keep-alive\n\n")  # also notices a closed tab
                else:
                    continue
                handler.wfile.flush()
                last_write = time.monotonic()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the browser went away
        finally:
            self._count("streams_open", -1)
            sub.close()

    def start(self) -> Dashboard:
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="nb09-dashboard", daemon=True)
        self.thread.start()
        _RUNNING.append(self)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the event streams (within ~1 s) and the server."""
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout)
        if self in _RUNNING:
            _RUNNING.remove(self)

    def _repr_html_(self) -> str:
        return (f'<p>Live dashboard: <a href="{self.url}" target="_blank">{self.url}</a> '
                "(served from this kernel on 127.0.0.1; open it in a browser on this machine)</p>")

    def __repr__(self) -> str:
        return f"<Dashboard {self.url} view={self.view}>"


def serve(redis_url: str, view: str, *, title: str = "Orders", port: int = 0) -> Dashboard:
    """Start the dashboard for ``view`` on a free port of 127.0.0.1 (``port=0``) and return it."""
    return Dashboard(redis_url, view, title=title, port=port).start()


def stop_all() -> int:
    """Stop every dashboard this kernel started (a re-run of the notebook calls it first)."""
    count = 0
    while _RUNNING:
        _RUNNING[-1].stop()
        count += 1
    return count


def probe(url: str, seconds: float = 2.0) -> int:
    """Read the page's event stream like a browser would for ``seconds``; returns the updates received."""
    import urllib.request

    received, deadline = 0, time.monotonic() + seconds
    with urllib.request.urlopen(url.rstrip("/") + "/events", timeout=2) as stream:
        try:
            while time.monotonic() < deadline:
                line = stream.readline()
                if not line:
                    break
                received += line.startswith(b"data:")
        except TimeoutError:
            pass
    return received
