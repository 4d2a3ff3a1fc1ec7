#!/usr/bin/env python3
"""The Docker check (`make docker-check`): build the course image, run it as a learner would, and
measure it. Not part of `make test` (it needs a Docker daemon and minutes); run it after changing
Dockerfile, docker-compose.yml, docker/, .devcontainer/ or the supervisor.

Steps, each timed and asserted; figures go to test-artifacts/docker-check.json:
  1. a daemon: $DOCKER_HOST / the default socket if it answers, else a private `dockerd
     --storage-driver=vfs` in a temporary data root (stopped and removed at the end);
  2. the base image: `python:3.11-slim-bookworm` if present or pullable, else (`--stand-in`) a
     debootstrap Debian 12 with Debian's Python 3.11 under that name (no Docker Hub here);
  3. build from a scratch copy of the working tree (with `--stand-in`, without the `# syntax=`
     line, which makes BuildKit fetch a frontend from Docker Hub); build time and image size;
  4. run it as `docker compose up` would (named volumes, published on 127.0.0.1 only): time to
     ready, a token required, JupyterLab listening for the published port, `services status`
     truthful, the welcome page and the course settings served; memory idle (`docker stats`);
  5. notebooks 00 and 02 through their tests inside the container, sampling `docker stats` for
     the peak and each course process's RSS;
  6. `docker stop`: exit code 0, Kafka and Redis shut down cleanly (their own logs say so);
  7. `docker start` again: ready, same token, notebook 00 passes again;
  8. Dev Container: a clone owned by uid 1000 mounted at /workspaces/streams-lab, the
     devcontainer.json postCreate/postStart commands run as `learner`; and a clone the learner
     cannot write, which must fail with a sentence naming the ownership;
  9. `docker compose config` (and `up`/`down`) when a Compose v2 binary is given or installed.

    .venv/bin/python tools/docker_check.py --stand-in [--compose PATH] [--skip-devcontainer] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "python:3.11-slim-bookworm"
IMAGE = "streams-lab:check"
NAME = "streams-lab-check"
NETWORK = "streams-lab-check"
VOLUMES = {"course": "streams-lab-check-course", "workspace": "streams-lab-check-workspace"}
STAND_IN_PACKAGES = "python3 python3-pip python3-venv python-is-python3 ca-certificates"
report: dict = {"steps": {}}


def log(msg: str) -> None:
    print(f"[docker-check {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(*cmd, check=True, timeout=1800, capture=True, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], text=True, timeout=timeout,
                         capture_output=capture, **kw)
    if check and res.returncode != 0:
        raise SystemExit(f"FAILED ({res.returncode}): {' '.join(map(str, cmd))}\n{res.stdout}\n{res.stderr}")
    return res


def docker(*args, **kw) -> subprocess.CompletedProcess:
    return sh(DOCKER, *args, **kw)


def record(step: str, **figures) -> None:
    report["steps"].setdefault(step, {}).update(figures)
    log(f"{step}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"CHECK FAILED: {what}")
    log(f"ok: {what}")


# --- 1. daemon --------------------------------------------------------------------------------
def ensure_daemon(work: Path) -> subprocess.Popen | None:
    if sh(DOCKER, "info", check=False, timeout=20).returncode == 0:
        log("using the running Docker daemon")
        return None
    dk = work / "dockerd"
    dk.mkdir(parents=True, exist_ok=True)
    sock = dk / "d.sock"
    proc = subprocess.Popen(["dockerd", "--storage-driver=vfs", f"--data-root={dk / 'root'}",
                             f"--exec-root={dk / 'exec'}", "-H", f"unix://{sock}", "--iptables=false",
                             "--bridge=none", f"--pidfile={dk / 'docker.pid'}"],
                            stdout=open(dk / "dockerd.log", "ab"), stderr=subprocess.STDOUT)
    os.environ["DOCKER_HOST"] = f"unix://{sock}"
    for _ in range(120):
        if sh(DOCKER, "info", check=False, timeout=20).returncode == 0:
            log(f"started dockerd (pid {proc.pid}, vfs, data root {dk / 'root'})")
            return proc
        time.sleep(0.5)
    raise SystemExit(f"dockerd did not start; see {dk / 'dockerd.log'}")


# --- 2. base image ------------------------------------------------------------------------------
def ensure_base(work: Path, stand_in: bool) -> None:
    if docker("image", "inspect", BASE, check=False).returncode == 0:
        log(f"base image {BASE} present")
        return
    if not stand_in:
        docker("pull", BASE, timeout=900)
        return
    rootfs = work / "rootfs"
    t0 = time.monotonic()
    if not (rootfs / "usr/bin/python3").exists():
        if not (rootfs / "bin/sh").exists():
            mirror = "http://deb.debian.org/debian"
            log(f"debootstrap --variant=minbase bookworm {rootfs} ...")
            sh("debootstrap", "--variant=minbase", "bookworm", rootfs, mirror, timeout=1800)
        for src in ("/etc/apt/sources.list", "/etc/apt/sources.list.d", "/etc/pip.conf",
                    "/usr/local/share/ca-certificates"):
            if Path(src).exists():
                dest = rootfs / src.lstrip("/")
                if Path(src).is_dir():
                    shutil.copytree(src, dest, dirs_exist_ok=True)
                else:
                    shutil.copy2(src, dest)
        shutil.copy2("/etc/resolv.conf", rootfs / "etc/resolv.conf")
        sh("chroot", rootfs, "sh", "-c", "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
           f"--no-install-recommends {STAND_IN_PACKAGES} && update-ca-certificates && apt-get clean "
           "&& rm -rf /var/lib/apt/lists/*", timeout=1800)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    sh(DOCKER, "import", "--change", "ENV PIP_BREAK_SYSTEM_PACKAGES=1", "--change", 'CMD ["python3"]',
       "-", BASE, stdin=tar.stdout, timeout=1800)
    tar.wait()
    record("base", stand_in=True, seconds=round(time.monotonic() - t0, 1),
           python=docker("run", "--rm", BASE, "python", "--version").stdout.strip())


# --- 3. build ----------------------------------------------------------------------------------
def scratch_copy(dest: Path, stand_in: bool) -> Path:
    files = sh("git", "-C", ROOT, "ls-files", "-co", "--exclude-standard", "-z").stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if stand_in:
        dockerfile = dest / "Dockerfile"
        text = dockerfile.read_text()
        dockerfile.write_text(re.sub(r"^# syntax=.*\n", "", text, count=1, flags=re.M))
    return dest


def build(context: Path) -> None:
    t0 = time.monotonic()
    res = docker("build", "--network", "host", "-t", IMAGE, ".", cwd=context, timeout=3600,
                 env={**os.environ, "DOCKER_BUILDKIT": "1"}, check=False)
    (Path(report["artifacts"]) / "docker-build.log").write_text(res.stdout + res.stderr)
    if res.returncode:
        raise SystemExit(f"docker build failed:\n{(res.stdout + res.stderr)[-4000:]}")
    size = int(docker("image", "inspect", "-f", "{{.Size}}", IMAGE).stdout)
    record("build", seconds=round(time.monotonic() - t0, 1), image_mb=round(size / 1e6))
    m2 = docker("run", "--rm", "--entrypoint", "stat", IMAGE, "-c", "%U %a", "/home/learner/.m2").stdout.split()
    check(m2[0] == "learner", f"~/.m2 in the image belongs to learner ({' '.join(m2)})")


# --- 4.-7. run, notebooks, stop, restart --------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, timeout: float = 5.0) -> tuple[int, str, dict]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace"), dict(e.headers)
    except OSError:  # refused, or reset by docker-proxy while nothing listens in the container yet
        return 0, "", {}


def dexec(*cmd, check=True, timeout=900) -> subprocess.CompletedProcess:
    return docker("exec", NAME, *cmd, check=check, timeout=timeout)


def status_rows() -> dict[str, dict]:
    out = dexec("python", "-c", "import json; from helpers.services.lab import Lab; "
                "print(json.dumps(Lab(log=lambda *a: None).status()))").stdout
    return {r["service"]: r for r in json.loads(out.strip().splitlines()[-1])}


def token() -> str:
    return dexec("cat", ".course/jupyter/token").stdout.strip()


def wait_ready(port: int, t0: float, limit: float = 300) -> float:
    while time.monotonic() - t0 < limit:
        state = docker("inspect", "-f", "{{.State.Status}}", NAME).stdout.strip()
        if state != "running":
            raise SystemExit(f"container {state}:\n{docker('logs', NAME, check=False).stdout[-3000:]}")
        try:
            tok = token()
            if http(f"http://127.0.0.1:{port}/api/status?token={tok}")[0] == 200:
                rows = status_rows()
                if all(rows[s]["state"] == "running" for s in ("redis", "kafka", "jupyter")):
                    return time.monotonic() - t0
        except (SystemExit, OSError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"not ready within {limit} s:\n{docker('logs', NAME, check=False).stdout[-3000:]}")


MEM_RE = re.compile(r"([\d.]+)\s*([KMG]i?B)")


def mib(text: str) -> float:
    num, unit = MEM_RE.search(text).groups()
    return float(num) * {"K": 1 / 1024, "M": 1, "G": 1024}[unit[0]]


def stats_mib() -> float:
    return mib(docker("stats", "--no-stream", "--format", "{{.MemUsage}}", NAME).stdout.split("/")[0])


PS = ("import json, psutil; rows = []\n"
      "for p in psutil.process_iter(['pid', 'name', 'cmdline', 'memory_info']):\n"
      "    c = ' '.join(p.info['cmdline'] or [])\n"
      "    k = ('kafka' if 'kafka.Kafka' in c else 'redis' if 'redis-server' in p.info['name'] else\n"
      "         'kernel' if 'ipykernel' in c else 'jupyterlab' if 'jupyter-lab' in c or 'jupyter lab' in c else\n"
      "         'pytest' if 'pytest' in c else 'other')\n"
      "    rows.append((k, p.info['memory_info'].rss / 2**20))\n"
      "out = {}\n"
      "for k, v in rows: out[k] = round(out.get(k, 0) + v, 1)\n"
      "print(json.dumps(out))")


def process_rss() -> dict:
    res = dexec("python", "-c", PS, check=False, timeout=30)
    return json.loads(res.stdout.strip() or "{}") if res.returncode == 0 else {}


def run_tests_sampling(tests: list[str], step: str) -> None:
    samples, per_process, done = [], {}, threading.Event()

    def sample():
        while not done.is_set():
            try:
                samples.append(stats_mib())
                for k, v in process_rss().items():
                    per_process[k] = max(per_process.get(k, 0), v)
            except (SystemExit, ValueError, AttributeError):
                pass
            done.wait(1.0)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.monotonic()
    res = dexec("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests, check=False, timeout=1800)
    done.set()
    th.join()
    tail = "\n".join(res.stdout.strip().splitlines()[-3:])
    (Path(report["artifacts"]) / f"docker-{step}.log").write_text(res.stdout + res.stderr)
    record(step, seconds=round(time.monotonic() - t0, 1), result=tail.splitlines()[-1] if tail else "",
           peak_mib=round(max(samples, default=0)), samples=len(samples),
           peak_rss_mib_by_process=per_process)
    check(res.returncode == 0, f"{' '.join(tests)} pass inside the container")


def run_container(port: int) -> None:
    for vol in VOLUMES.values():
        docker("volume", "create", vol)
    docker("network", "create", NETWORK, check=False)
    t0 = time.monotonic()
    docker("run", "-d", "--name", NAME, "--network", NETWORK, "-p", f"127.0.0.1:{port}:8888",
           "-e", f"COURSE_LAB_PUBLIC_PORT={port}",
           "-v", f"{VOLUMES['course']}:/opt/streamslab/.course",
           "-v", f"{VOLUMES['workspace']}:/opt/streamslab/workspace", IMAGE)
    ready = wait_ready(port, t0)
    record("run", ready_seconds=round(ready, 1))
    tok = token()
    check(http(f"http://127.0.0.1:{port}/api/status")[0] == 403, "JupyterLab refuses a request without the token")
    code, _, headers = http(f"http://127.0.0.1:{port}/?token={tok}")
    check(code in (301, 302) and "/lab/tree/README.md" in headers.get("Location", ""),
          f"/ redirects to the welcome page ({code} {headers.get('Location')})")
    code, body, _ = http(f"http://127.0.0.1:{port}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={tok}")
    news = json.loads(body)["schema"]["properties"]["fetchNews"]["default"] if code == 200 else None
    check(news == "false", f"JupyterLab serves the course settings (fetchNews default {news!r}: no news prompt)")
    code, body, _ = http(f"http://127.0.0.1:{port}/api/contents/README.md?token={tok}&content=1")
    check(code == 200 and "Welcome to Streams Lab" in body, "the welcome page is the learner workspace's README.md")
    rows = status_rows()
    check(rows["jupyter"]["state"] == "running" and rows["jupyter"]["address"].startswith("0.0.0.0:"),
          f"`services status` shows JupyterLab running on {rows['jupyter']['address']}")
    logs = docker("logs", NAME).stdout
    check(f"http://127.0.0.1:{port}/lab/tree/README.md?token={tok}" in logs, "the log prints the URL to open")
    time.sleep(20)
    record("idle", docker_stats_mib=round(stats_mib()), rss_mib_by_process=process_rss())


def stop_container(step: str) -> None:
    t0 = time.monotonic()
    docker("stop", "-t", "60", NAME, timeout=120)
    seconds = time.monotonic() - t0
    code = int(docker("inspect", "-f", "{{.State.ExitCode}}", NAME).stdout)
    logs = docker("logs", NAME).stdout
    record(step, seconds=round(seconds, 1), exit_code=code)
    check(code == 0, f"docker stop: exit code {code}")
    for service in ("jupyter", "kafka", "redis"):
        check(re.search(rf"^{service}\s+stopped \(pid \d+\)", logs.split("SIGTERM")[-1], re.M) is not None,
              f"{service} stopped by the supervisor on SIGTERM")


def server_logs_say_clean_stop() -> None:
    kafka = dexec("grep", "-c", "shut down completed", ".course/kafka/broker/logs/server.log", check=False).stdout
    redis = dexec("grep", "-c", "ready to exit, bye bye", ".course/redis/redis.log", check=False).stdout
    check(int(kafka.strip() or 0) >= 1, f"Kafka's log says 'shut down completed' ({kafka.strip()}x)")
    check(int(redis.strip() or 0) >= 1, f"Redis's log says 'ready to exit, bye bye' ({redis.strip()}x)")


def restart_container(port: int, tok: str) -> None:
    t0 = time.monotonic()
    docker("start", NAME)
    ready = wait_ready(port, t0)
    record("restart", ready_seconds=round(ready, 1))
    check(token() == tok, "the token survives a restart (kept on the volume)")
    server_logs_say_clean_stop()
    run_tests_sampling(["tests/test_nb00_environment.py"], "nb00-after-restart")


# --- 8. Dev Container -------------------------------------------------------------------------------
def devcontainer(work: Path) -> None:
    conf = json.loads(re.sub(r"^\s*//.*$", "", (ROOT / ".devcontainer/devcontainer.json").read_text(), flags=re.M))
    post_create, post_start = conf["postCreateCommand"], conf["postStartCommand"]
    clone = work / "devcontainer-clone"
    shutil.rmtree(clone, ignore_errors=True)
    scratch_copy(clone, stand_in=False)
    sh("git", "init", "-q", clone)

    def run_as_learner(script: str, timeout=1800) -> subprocess.CompletedProcess:
        return docker("run", "--rm", "--network", "host", "-u", "learner", "--entrypoint", "bash",
                      "-v", f"{clone}:/workspaces/streams-lab", "-w", "/workspaces/streams-lab", IMAGE,
                      "-c", script, check=False, timeout=timeout)

    # a clone the learner cannot write: the failure must name the cause, not python3-venv
    sh("chown", "-R", "0:0", clone)
    sh("chmod", "-R", "go-w", clone)
    res = run_as_learner(post_create, timeout=300)
    out = res.stdout + res.stderr
    check(res.returncode != 0 and "not writable" in out and "python3-venv" not in out,
          f"postCreateCommand in a clone owned by root fails naming the ownership: {out.strip().splitlines()[-1]}")
    # a clone owned by the learner's uid (Dev Containers map the host user's uid onto `learner`)
    sh("chown", "-R", "1000:1000", clone)
    t0 = time.monotonic()
    script = (f"set -e; {post_create}; echo POSTCREATE-OK; {post_start}; echo POSTSTART-OK; "
              "test -w ~/.m2; .venv/bin/python -m helpers.services status; "
              ".venv/bin/python -c 'from helpers.clients import require_redis, require_kafka; "
              "require_redis().ping(); require_kafka().close(); print(\"SERVICES-OK\")'; "
              "make services-down")
    res = run_as_learner(script)
    out = res.stdout + res.stderr
    (Path(report["artifacts"]) / "docker-devcontainer.log").write_text(out)
    check(res.returncode == 0 and "POSTSTART-OK" in out and "SERVICES-OK" in out,
          f"postCreateCommand + postStartCommand as learner in /workspaces/streams-lab (see docker-devcontainer.log)\n{out[-2000:]}")
    record("devcontainer", seconds=round(time.monotonic() - t0, 1),
           jupyter_running="jupyter " in out and re.search(r"^jupyter\s+\d+", out, re.M) is not None)


# --- 9. Compose -------------------------------------------------------------------------------------
def compose(binary: str | None, port: int) -> None:
    cmd = [binary] if binary else [DOCKER, "compose"]
    if sh(*cmd, "version", check=False).returncode != 0:
        record("compose", checked=False, reason="no Compose v2 binary (`docker compose version` failed)")
        return
    version = sh(*cmd, "version", "--short").stdout.strip()
    env = {**os.environ, "LAB_PORT": str(port)}
    res = sh(*cmd, "-f", ROOT / "docker-compose.yml", "config", "--format", "json", env=env, check=False)
    if res.returncode != 0:
        raise SystemExit(f"docker compose config failed:\n{res.stderr}")
    conf = json.loads(res.stdout)
    ports = conf["services"]["lab"]["ports"]
    check(conf["name"] == "streams-lab" and all(p.get("host_ip") == "127.0.0.1" for p in ports),
          f"compose {version} config: project streams-lab, published on 127.0.0.1 only ({ports})")
    record("compose", checked=True, version=version)
    # up with the image built above (no second build), then down -v
    docker("tag", IMAGE, "streams-lab:latest")
    t0 = time.monotonic()
    up = sh(*cmd, "-f", ROOT / "docker-compose.yml", "up", "-d", "--no-build", env=env, check=False, timeout=600)
    if up.returncode != 0:
        record("compose", up=f"failed: {(up.stdout + up.stderr).strip()[-300:]}")
        return
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and http(f"http://127.0.0.1:{port}/api/status")[0] != 403:
            time.sleep(1)
        record("compose", up_ready_seconds=round(time.monotonic() - t0, 1),
               answers_on_published_port=http(f"http://127.0.0.1:{port}/api/status")[0] == 403)
    finally:
        down = sh(*cmd, "-f", ROOT / "docker-compose.yml", "down", "-v", env=env, check=False, timeout=300)
        record("compose", down_rc=down.returncode)


def cleanup(dockerd: subprocess.Popen | None, work: Path, keep: bool) -> None:
    docker("rm", "-f", NAME, check=False)
    for vol in VOLUMES.values():
        docker("volume", "rm", "-f", vol, check=False)
    docker("network", "rm", NETWORK, check=False)
    if dockerd is not None and not keep:
        dockerd.terminate()
        try:
            dockerd.wait(60)
        except subprocess.TimeoutExpired:
            dockerd.kill()
        shutil.rmtree(work / "dockerd", ignore_errors=True)
        log("stopped dockerd and removed its data root")


def main() -> int:
    global DOCKER
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stand-in", action="store_true", help="build a debootstrap stand-in for the base image")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "streamslab-docker-check"))
    ap.add_argument("--docker", default="/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker")
    ap.add_argument("--compose", help="a Compose v2 binary (default: `docker compose`)")
    ap.add_argument("--skip-devcontainer", action="store_true")
    ap.add_argument("--keep", action="store_true", help="leave dockerd and its data root (faster re-runs)")
    args = ap.parse_args()
    DOCKER = args.docker
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    report.update(artifacts=str(artifacts), started=time.strftime("%Y-%m-%d %H:%M:%S"), stand_in=args.stand_in)
    dockerd = ensure_daemon(work)
    try:
        report["docker"] = docker("version", "--format", "{{.Server.Version}}").stdout.strip()
        ensure_base(work, args.stand_in)
        ctx = work / "context"
        shutil.rmtree(ctx, ignore_errors=True)
        build(scratch_copy(ctx, args.stand_in))
        docker("rm", "-f", NAME, check=False)
        port = free_port()
        run_container(port)
        tok = token()
        run_tests_sampling(["tests/test_nb00_environment.py", "tests/test_nb02_lists.py"], "notebooks")
        stop_container("stop")
        restart_container(port, tok)
        stop_container("stop-after-restart")
        docker("rm", NAME)
        if not args.skip_devcontainer:
            devcontainer(work)
        compose(args.compose, free_port())
        report["result"] = "passed"
    finally:
        report.setdefault("result", "failed")
        (artifacts / "docker-check.json").write_text(json.dumps(report, indent=2))
        cleanup(dockerd, work, args.keep)
    log(f"all checks passed; figures in {artifacts / 'docker-check.json'}")
    return 0


DOCKER = "docker"

if __name__ == "__main__":
    sys.exit(main())
