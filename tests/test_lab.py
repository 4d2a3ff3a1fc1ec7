"""`make lab`'s service: JupyterLab on 127.0.0.1, idempotent, and notebook 00 runs green in its kernel."""

import json
import uuid

import psutil
import pytest
import requests
import websocket
from conftest import notebook_path

pytestmark = pytest.mark.notebook


def run_in_lab_kernel(base: str, token: str, sources: list[str], timeout: float = 120) -> list[dict]:
    """Execute each source in one kernel started through the Jupyter server's REST + websocket API."""
    headers = {"Authorization": f"token {token}"}
    kernel = requests.post(f"{base}/api/kernels", headers=headers, json={"name": "python3"}, timeout=30).json()
    ws = websocket.create_connection(f"{base.replace('http', 'ws')}/api/kernels/{kernel['id']}/channels",
                                     header=[f"Authorization: token {token}"], timeout=timeout)
    replies = []
    try:
        for source in sources:
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({"header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                                           "session": uuid.uuid4().hex, "version": "5.3"},
                                "parent_header": {}, "metadata": {}, "channel": "shell",
                                "content": {"code": source, "silent": False, "store_history": True,
                                            "user_expressions": {}, "allow_stdin": False}}))
            while True:
                msg = json.loads(ws.recv())
                if msg.get("channel") == "shell" and msg["parent_header"].get("msg_id") == msg_id:
                    replies.append(msg["content"])
                    break
    finally:
        ws.close()
        requests.delete(f"{base}/api/kernels/{kernel['id']}", headers=headers, timeout=30)
    return replies


def test_lab_serves_on_loopback_and_runs_notebook_00(lab):
    started_here = not lab.jupyter.running
    lab.up(("redis", "kafka", "jupyter"))
    try:
        pid = lab.jupyter.pid
        base, token = f"http://127.0.0.1:{lab.jupyter.port}", lab.jupyter.token
        assert requests.get(f"{base}/api/status", params={"token": token}, timeout=10).status_code == 200
        assert requests.get(f"{base}/api/status", timeout=10).status_code == 403  # a token is required
        listening = [c for c in psutil.net_connections("tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr.port == lab.jupyter.port]
        assert listening and {c.laddr.ip for c in listening} <= {"127.0.0.1", "::ffff:127.0.0.1"}

        assert lab.up(("redis", "kafka", "jupyter"))["jupyter"]["state"] == "already running"
        assert lab.jupyter.pid == pid

        nb = json.loads(notebook_path("00").read_text())
        sources = ["import os; os.chdir({!r})".format(str(notebook_path("00").parent))]
        sources += ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        sources.append("assert measured['failed'] == 0 and measured['ok'] > 10, measured")
        replies = run_in_lab_kernel(base, token, sources)
        errors = [(i, r.get("ename"), r.get("evalue")) for i, r in enumerate(replies) if r["status"] != "ok"]
        assert not errors
    finally:
        if started_here:
            lab.jupyter.stop()
