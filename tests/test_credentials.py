"""Issue 7, credentials and addresses that are not Redis: no message, status table or process list
shows a Redis password, worker processes get it outside their command line, and a REDIS_URL that
answers with something other than Redis gets a course sentence (not InvalidResponse).
Against a password-protected throwaway redis-server and local fake listeners."""

import socket
import subprocess
import threading
import time

import psutil
import pytest
import redis
from conftest import plain_redis_server

from helpers import clients, config, errors, workers
from helpers.errors import ServiceUnavailable
from helpers.services import Lab

SECRET = "s3cret-Pa55"


@pytest.fixture
def locked_redis(tmp_path):
    """A redis-server with ``requirepass``; yields (url with the password, port, process)."""
    port, proc = plain_redis_server(tmp_path, 17479, "--requirepass", SECRET, password=SECRET)
    url = f"redis://:{SECRET}@127.0.0.1:{port}/0"
    yield url, port, proc
    proc.kill()
    proc.wait(5)


def sentence(fn) -> str:
    with pytest.raises(ServiceUnavailable) as err:
        fn()
    text = str(err.value)
    assert SECRET not in text and "wrong-" not in text and "\n" not in text, text
    return text


def test_no_message_shows_the_password(locked_redis, monkeypatch, tmp_path):
    url, port, proc = locked_redis
    monkeypatch.setenv("REDIS_URL", url)
    assert clients.require_redis().ping()
    masked = f"redis://:***@127.0.0.1:{port}/0"
    assert config.mask_url(url) == masked

    wrong = url.replace(SECRET, "wrong-" + SECRET)
    assert "check the password in REDIS_URL" in sentence(lambda: clients.require_redis(wrong))
    assert "not a valid address" in sentence(lambda: clients.require_redis(url.replace(str(port), "99999")))
    rows = {row["service"]: row for row in Lab(tmp_path, log=lambda *_: None).status()}
    assert rows["redis"]["address"] == masked and rows["redis"]["state"] == "external"
    from helpers import preflight  # notebook 00's table of addresses

    shown = {row["check"]: row["measured"] for row in preflight.resources()}
    assert shown["REDIS_URL"] == masked

    proc.kill()
    proc.wait(5)
    down = sentence(clients.require_redis)
    assert masked in down and "check the server at REDIS_URL" in down
    try:
        clients.redis_client().ping()
    except redis.ConnectionError as exc:
        errors.USED.add("redis")
        explained = errors.explain(exc)
    assert explained.startswith(f"Redis stopped answering at {masked} (connection refused): check the server at REDIS_URL")
    assert SECRET not in explained


def test_a_worker_process_gets_the_password_outside_its_command_line(locked_redis):
    url, port, proc = locked_redis
    key = "streamslab:pytest:credentials:beat"
    worker = workers.ProcessWorker("helpers.workers:heartbeat", redis_url=url, key=key).start()
    r = redis.Redis.from_url(url, socket_timeout=2)
    try:
        workers.wait_until(lambda: int(r.get(key) or 0) >= 2, 15, "the worker's heartbeat")
        command_line = " ".join(psutil.Process(worker.pid).cmdline())
        assert "helpers.workers" in command_line and SECRET not in command_line, command_line
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, timeout=10).stdout
        assert SECRET not in ps
    finally:
        worker.kill()
        r.delete(key)
        workers.stop_all()


def fake_server(reply: bytes, close: bool) -> tuple[int, socket.socket]:
    """A TCP listener that answers every connection with ``reply`` (then closes it, or not)."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            try:
                conn.settimeout(2)
                conn.recv(4096)
                conn.sendall(reply)
                if close:
                    conn.close()
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1], srv


@pytest.mark.parametrize("reply, close, expect", [
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", True, "not as Redis"),
    (b"\x00\x17garbage from a plain TCP server\r\n", False, "not as Redis"),
    (b"", False, "did not answer"),
], ids=["http", "garbage", "silent"])
def test_a_server_that_is_not_redis_gets_a_course_sentence(reply, close, expect, monkeypatch):
    port, srv = fake_server(reply, close)
    monkeypatch.setenv("REDIS_URL", f"redis://:{SECRET}@127.0.0.1:{port}/0")
    try:
        t0 = time.monotonic()
        text = sentence(clients.require_redis)
        assert expect in text and f"redis://:***@127.0.0.1:{port}/0" in text and "REDIS_URL" in text, text
        assert time.monotonic() - t0 < 5
    finally:
        srv.close()
