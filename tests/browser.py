"""Headless Chromium (Debian's ``chromium``, driven by Playwright) for the learner's-screen tests.

Playwright's PyPI package bundles its driver; its own browser downloads are never used: the
browser is Debian's, installed here through apt-get when missing and allowed (root or ``sudo -n``),
as ``make test`` does for redis-server. The ``chromium`` fixture in ``conftest.py`` launches it once per
test module; :class:`RequestLog` records (and aborts) requests to other hosts; :func:`shot` saves screenshots.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def ensure_chromium(log=print) -> str:
    """Path of Debian's chromium, installed with apt-get when missing and we may (root or sudo -n)."""
    # the same apt-get path as Java and Maven
    from helpers.services.kafka_server import require_tool

    return find_chromium() or require_tool("chromium", "chromium", "install Debian's chromium for the browser "
                                           "tests (`sudo apt-get install chromium`)", log)


class RequestLog:
    """Every request a page makes, and the ones that went to a host other than the allowed one.

    Requests to other hosts are aborted (so an offline machine and a connected one behave the
    same) and recorded as ``foreign``; ``data:``/``blob:`` URLs are local by definition.
    """

    def __init__(self, allowed_netloc: str | None):
        self.allowed = allowed_netloc
        self.urls: list[str] = []
        self.foreign: list[str] = []

    def is_local(self, url: str) -> bool:
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob", "about", "chrome-error"):
            return True
        if parsed.scheme == "file":
            return self.allowed is None
        return parsed.scheme in ("http", "https", "ws", "wss") and parsed.netloc == self.allowed

    def attach(self, context) -> None:
        def route(r):
            url = r.request.url
            self.urls.append(url)
            if self.is_local(url):
                r.continue_()
            else:
                self.foreign.append(url)
                r.abort()

        context.route("**/*", route)
        context.on("request", lambda req: None if self.is_local(req.url) or req.url in self.foreign
                   else self.foreign.append(req.url))
        context.on("websocket", lambda ws: None if self.is_local(ws.url) else self.foreign.append(ws.url))


def launch(playwright):
    return playwright.chromium.launch(executable_path=ensure_chromium(), headless=True, args=CHROMIUM_ARGS)


def shot(page, name: str, **options) -> Path:
    """A screenshot as ``test-artifacts/browser/<name>.png`` (``full_page=True`` for the whole page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    return path
