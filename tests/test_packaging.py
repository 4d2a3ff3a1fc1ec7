"""The other ways in (Docker, Compose, Binder, Dev Containers), checked without Docker.

The image itself is built, run and measured by `make docker-check` (tools/docker_check.py), which
needs a Docker daemon; what runs here, in seconds, is what those routes execute that needs none:

- docker/entrypoint.sh, run locally (temporary COURSE_DIR, real servers): the image's default
  `lab` mode serves the learner workspace with the course settings on all interfaces, asks for a
  token, is reported truthfully by `services status`, and on SIGTERM (what tini forwards on
  `docker stop`) stops JupyterLab and Redis and exits 0; another command runs with the services up
  and passes its exit status through, 0 when it was ended by SIGTERM;
- binder/start with a stub command: the command is exec'd with its arguments and exit status, at
  once, while Redis and Kafka come up in the background and the workspace is synced;
- binder/jupyter_config.py: a real Jupyter server started with that config opens on the welcome
  page and serves the course settings;
- .devcontainer/devcontainer.json against the Dev Container JSON schema (vendored in
  tests/schemas/devcontainer, see SOURCE.md there);
- docker-compose.yml / Dockerfile / .dockerignore: loopback-only publishing, a token, clean stop;
- `make setup` in a folder the user cannot write names the owner instead of "install python3-venv".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "tests" / "schemas" / "devcontainer"
LIBS = ROOT / ".course" / "kafka" / "libs"


# --- helpers ----------------------------------------------------------------------------------
def free_port(pair: bool = False) -> int:
    """A free loopback port (and the next one free too when ``pair``: Kafka's controller)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair:
            return port
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port pair")


def course_env(tmp_path: Path, **extra) -> dict:
    """The environment of a throwaway course: its own .course, workspace and ports."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "KAFKA_BOOTSTRAP", "JUPYTER_TOKEN", "COURSE_LAB_HOST")}
    env.update(COURSE_DIR=str(tmp_path / "course"), COURSE_WORKSPACE=str(tmp_path / "workspace"),
               COURSE_REDIS_PORT=str(free_port()), COURSE_LAB_PORT=str(free_port()),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.update(extra)
    return env


def state(env: dict, service: str) -> dict:
    path = Path(env["COURSE_DIR"]) / {"redis": "redis/redis.state.json", "jupyter": "jupyter/jupyter.state.json",
                                       "kafka": "kafka/broker/kafka.state.json"}[service]
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def alive(env: dict, service: str) -> bool:
    pid = state(env, service).get("pid")
    try:
        return bool(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_for(cond, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before {what}:\n{proc.stdout.read()}")
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def http(url: str) -> tuple[int, str, dict]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace"), dict(e.headers)
    except OSError:  # not listening yet
        return 0, "", {}


def default(settings_reply: str, name: str):
    """A setting's default as JupyterLab serves it (services/jupyter/settings/overrides.json applied)."""
    return json.loads(settings_reply)["schema"]["properties"][name]["default"]


def exited(pid: int) -> bool:
    """Gone, or a zombie: a server whose starter (`services up`) has exited belongs to init once it
    stops, which reaps it when it gets to it (tini at once in the image; later on some machines)."""
    from helpers.services.process import exited as supervisor_exited

    return supervisor_exited(pid)


def services(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "helpers.services", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def stop_everything(env: dict) -> None:
    services(env, "down")


# --- docker/entrypoint.sh --------------------------------------------------------------------------
@pytest.mark.timeout(180)
def test_entrypoint_lab_mode_serves_the_workspace_and_stops_cleanly_on_sigterm(tmp_path):
    # Kafka is "external" here (not started): the lab mode and the clean stop are the point; the
    # Docker check runs the same entrypoint with the real Kafka inside the image.
    env = course_env(tmp_path, KAFKA_BOOTSTRAP="127.0.0.1:9", JUPYTER_TOKEN="")
    port = int(env["COURSE_LAB_PORT"])
    proc = subprocess.Popen(["bash", "docker/entrypoint.sh"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: alive(env, "jupyter") and http(f"http://127.0.0.1:{port}/api/status")[0] == 403,
                 90, "JupyterLab answering", proc)
        token = (tmp_path / "course" / "jupyter" / "token").read_text().strip()
        assert re.fullmatch(r"[0-9a-f]{32}", token), "an empty JUPYTER_TOKEN must not turn the token off"
        assert http(f"http://127.0.0.1:{port}/api/status?token={token}")[0] == 200
        # bound to every interface of the container, so Docker's port mapping reaches it
        pid = state(env, "jupyter")["pid"]
        listening = {c.laddr.ip for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN}
        assert listening & {"0.0.0.0", "::"}, listening
        # the learner workspace's welcome page and the course's settings, as `make lab`
        code, _, headers = http(f"http://127.0.0.1:{port}/?token={token}")
        assert code in (301, 302) and urlsplit(headers["Location"]).path == "/lab/tree/README.md", (code, headers)
        assert "Welcome to Streams Lab" in (tmp_path / "workspace" / "README.md").read_text()
        code, body, _ = http(f"http://127.0.0.1:{port}/lab/api/settings/"
                             f"@jupyterlab/apputils-extension:notification?token={token}")
        assert code == 200 and default(body, "fetchNews") == "false"
        # `services status` tells the truth about the container's JupyterLab
        status = services(env, "status").stdout
        assert re.search(rf"^jupyter\s+{pid}\s+0\.0\.0\.0:{port}\s+\S+\s+running", status, re.M), status
        redis_pid = state(env, "redis")["pid"]

        proc.send_signal(signal.SIGTERM)  # what tini forwards on `docker stop`
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        stop_everything(env)
    assert proc.returncode == 0, out
    assert f"jupyter  stopped (pid {pid})" in out and f"redis    stopped (pid {redis_pid})" in out, out
    assert exited(pid) and exited(redis_pid)
    assert f"open http://127.0.0.1:{port}/lab/tree/README.md?token={token}" in out  # the URL to open


@pytest.mark.timeout(120)
def test_entrypoint_runs_a_command_with_the_services_and_exits_0_on_sigterm(tmp_path):
    env = course_env(tmp_path, KAFKA_BOOTSTRAP="127.0.0.1:9")
    proc = subprocess.Popen(["bash", "docker/entrypoint.sh", "sleep", "300"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: alive(env, "redis") and any(p.name() == "sleep" for p in psutil.Process(proc.pid).children()),
                 60, "Redis up and the command running", proc)
        redis_pid = state(env, "redis")["pid"]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        stop_everything(env)
    assert proc.returncode == 0, f"a clean stop must exit 0 (a stopped container shows 143 otherwise)\n{out}"
    assert f"redis    stopped (pid {redis_pid})" in out and exited(redis_pid), out

    # a command's own status passes through, with its arguments intact; the services stop after it
    res = subprocess.run(["bash", "docker/entrypoint.sh", sys.executable, "-c",
                          "import sys; print('ARGS', sys.argv[1:]); sys.exit(3)", "a b", "c"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 3 and "ARGS ['a b', 'c']" in res.stdout, res.stdout + res.stderr
    assert not alive(env, "redis")


# --- binder/ ----------------------------------------------------------------------------------------
@pytest.mark.timeout(180)
def test_binder_start_execs_the_command_at_once_and_starts_the_services_in_the_background(tmp_path, lab):
    if not (LIBS / ".pom.sha256").exists():
        pytest.skip("the course's Kafka jars are not resolved yet (make services-up)")
    env = course_env(tmp_path, COURSE_KAFKA_PORT=str(free_port(pair=True)))
    (tmp_path / "course" / "kafka").mkdir(parents=True)
    (tmp_path / "course" / "kafka" / "libs").symlink_to(LIBS)  # postBuild resolved them at build time
    try:
        t0 = time.monotonic()
        res = subprocess.run([str(ROOT / "binder" / "start"), sys.executable, "-c",
                              "import sys; print('ARGS', sys.argv[1:]); sys.exit(7)", "a b", "c"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        start_seconds = time.monotonic() - t0
        assert res.returncode == 7 and "ARGS ['a b', 'c']" in res.stdout, res.stdout + res.stderr

        log = tmp_path / "course" / "services-start.log"
        wait_for(lambda: "services up in" in (log.read_text() if log.exists() else ""), 120,
                 "Redis and Kafka started by binder/start")
        up_seconds = float(re.search(r"services up in ([\d.]+) s", log.read_text()).group(1))
        assert start_seconds < up_seconds, "binder/start must not wait for Kafka"
        assert alive(env, "redis") and alive(env, "kafka"), log.read_text()
        with socket.create_connection(("127.0.0.1", int(env["COURSE_REDIS_PORT"])), timeout=5) as s:
            s.sendall(b"PING\r\n")
            assert s.recv(16) == b"+PONG\r\n"
        assert "Welcome to Streams Lab" in (tmp_path / "workspace" / "README.md").read_text()
        assert list((tmp_path / "workspace").glob("00_*.ipynb"))
    finally:
        stop_everything(env)
    assert not alive(env, "redis") and not alive(env, "kafka")


@pytest.mark.timeout(120)
def test_binder_jupyter_config_opens_the_welcome_page_with_the_course_settings(tmp_path):
    etc, root = tmp_path / "etc", tmp_path / "root"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "COURSE_WORKSPACE"))}
    res = subprocess.run([sys.executable, "binder/jupyter_config.py", str(etc)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    config = json.loads((etc / "jupyter_server_config.json").read_text())
    assert config["ServerApp"]["default_url"] == "/lab/tree/workspace/README.md"
    assert "*.egg-info" in config["ContentsManager"]["hide_globs"]

    # Binder's own server command, with that config: it must pick it up
    (root / "workspace").mkdir(parents=True)
    port, token = free_port(), "binder-test-token"
    env.update(JUPYTER_CONFIG_PATH=str(etc), JUPYTER_CONFIG_DIR=str(tmp_path / "user"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
                               "--ip=127.0.0.1", f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
                               *(["--allow-root"] if os.geteuid() == 0 else [])],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: http(f"http://127.0.0.1:{port}/api/status?token={token}")[0] == 200, 60,
                 "Jupyter answering", server)
        code, _, headers = http(f"http://127.0.0.1:{port}/?token={token}")
        assert code in (301, 302) and urlsplit(headers["Location"]).path == "/lab/tree/workspace/README.md", headers
        code, body, _ = http(f"http://127.0.0.1:{port}/lab/api/settings/"
                             f"@jupyterlab/docmanager-extension:plugin?token={token}")
        assert default(body, "defaultViewers") == {"markdown": "Markdown Preview"}
    finally:
        server.terminate()
        server.wait(30)


def test_binder_files_follow_repo2docker_conventions():
    for name in ("start", "postBuild"):
        path = ROOT / "binder" / name
        assert os.access(path, os.X_OK), f"binder/{name} must be executable"
        assert path.read_text().startswith("#!/bin/bash\n")
        assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    lines = [line.strip() for line in (ROOT / "binder" / "start").read_text().splitlines() if line.strip()]
    assert lines[-1] == 'exec "$@"', "repo2docker: the last line of start must be exec \"$@\""
    env = yaml.safe_load((ROOT / "binder" / "environment.yml").read_text())
    conda = {str(d).split("=")[0] for d in env["dependencies"] if isinstance(d, str)}
    assert {"python", "openjdk", "maven", "redis-server", "pip"} <= conda
    root_env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert {d for d in env["dependencies"] if isinstance(d, str)} == \
        {d for d in root_env["dependencies"] if isinstance(d, str)}, "binder/ and the root environment.yml drifted apart"


# --- .devcontainer ------------------------------------------------------------------------------------
def jsonc(text: str) -> dict:
    """JSON with // and /* */ comments (devcontainer.json), strings left intact."""
    return json.loads(re.sub(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', lambda m: m.group(1) or "", text, flags=re.S))


def devcontainer_errors(doc: dict) -> list[str]:
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    registry = Registry().with_resource("vscode://schemas/settings/machine",
                                        Resource.from_contents({"type": "object"}, default_specification=DRAFT7))
    errors = []
    for name in ("base", "codespaces", "vscode"):  # devContainer.schema.json is allOf these three
        schema = json.loads((SCHEMAS / f"devContainer.{name}.schema.json").read_text())
        cls = jsonschema.validators.validator_for(schema)
        errors += [f"{name}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
                   for e in cls(schema, registry=registry).iter_errors(doc)]
    return errors


def test_devcontainer_json_is_valid_against_the_dev_container_schema():
    doc = jsonc((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    assert devcontainer_errors(doc) == []
    # the validation can fail: a misspelt property and a malformed memory size are caught
    assert devcontainer_errors({**doc, "postCreateComand": "make setup"})
    assert devcontainer_errors({**doc, "hostRequirements": {"cpus": 2, "memory": "4 GB"}})
    assert devcontainer_errors({**doc, "customizations": {"vscode": {"extensions": ["not an id"]}}})


def test_devcontainer_runs_the_course_commands_as_the_learner_on_a_big_enough_machine():
    doc = jsonc((ROOT / ".devcontainer" / "devcontainer.json").read_text())
    assert doc["remoteUser"] == "learner" and doc["build"]["dockerfile"] == "../Dockerfile"
    assert doc["postCreateCommand"] == "bash docker/devcontainer-setup.sh"
    assert "make setup" in (ROOT / "docker" / "devcontainer-setup.sh").read_text()
    assert doc["postStartCommand"] == "make lab" and 8888 in doc["forwardPorts"]
    req = doc["hostRequirements"]
    assert req["cpus"] >= 2 and int(req["memory"].rstrip("gb")) >= 4  # notebook 07: 3 brokers + controller


# --- Compose / Dockerfile ------------------------------------------------------------------------------
def test_compose_publishes_on_loopback_only_with_a_token_and_a_clean_stop():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    lab = compose["services"]["lab"]
    assert compose["name"] == "streams-lab"
    assert lab["ports"] and all(str(p).startswith("127.0.0.1:") for p in lab["ports"]), lab["ports"]
    assert "JUPYTER_TOKEN" in lab["environment"]  # empty by default: a random token, never none
    assert int(lab["stop_grace_period"].rstrip("s")) >= 30
    mounts = {v.split(":")[1] for v in lab["volumes"]}
    assert {"/opt/streamslab/.course", "/opt/streamslab/workspace"} <= mounts
    assert set(compose["volumes"]) >= {v.split(":")[0] for v in lab["volumes"]}


def test_compose_config_with_compose_v2_when_present():
    candidates = [[shutil.which("docker"), "compose"], [shutil.which("docker-compose")]]
    for cmd in candidates:
        if not cmd[0]:
            continue
        version = subprocess.run([*cmd, "version", "--short"], capture_output=True, text=True, timeout=30)
        if version.returncode == 0 and not version.stdout.strip().lstrip("v").startswith("1."):
            break  # Compose v2 or later (a source build says "dev"); 1.x rejects the top-level name
    else:
        pytest.skip("no Compose v2 here (`make docker-check` runs it where one is given)")
    res = subprocess.run([*cmd, "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    ports = json.loads(res.stdout)["services"]["lab"]["ports"]
    assert all(p["host_ip"] == "127.0.0.1" for p in ports)


def test_dockerfile_runs_the_lab_as_the_learner_under_tini():
    text = (ROOT / "Dockerfile").read_text()
    instr = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert instr[-1] == 'CMD ["lab"]', "the default command is the entrypoint's lab mode (make lab)"
    assert any(i.startswith("ENTRYPOINT") and "tini" in i and "docker/entrypoint.sh" in i for i in instr)
    users = [i for i in instr if i.startswith("USER ")]
    assert users and users[-1] == "USER learner"
    assert "/home/learner/.m2" in text and "target=/home/learner" not in text, \
        "a cache mount on ~/.m2 leaves a root-owned ~/.m2 in the image"
    assert "--ip=0.0.0.0" not in text, "the supervisor binds JupyterLab (COURSE_LAB_HOST), not the CMD"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".course/", ".venv/", ".git/", "workspace/"} <= set(ignored)


# --- make setup ------------------------------------------------------------------------------------------
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to act as another user")
def test_make_setup_names_an_unwritable_folder_instead_of_python3_venv():
    import tempfile

    clone = Path(tempfile.mkdtemp(prefix="streamslab-unwritable-"))  # /tmp itself: others may enter
    try:
        clone.chmod(0o755)
        (clone / "tools").mkdir()
        for rel in ("Makefile", "pyproject.toml", "tools/stage"):
            shutil.copy2(ROOT / rel, clone / rel)
        res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              "make", "-C", str(clone), "setup", "PYTHON=/usr/bin/python3"],
                             capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(clone)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert f"{clone} is not writable by" in out and "(uid 65534)" in out and "belongs to uid 0" in out, out
    assert "python3-venv" not in out, out
