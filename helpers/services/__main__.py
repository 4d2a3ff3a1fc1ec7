"""``python -m helpers.services up|down|status|logs|kill|restart``."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from ..errors import CourseError
from .lab import Lab
from .process import tail


def _table(rows: list[dict]) -> str:
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols), "  ".join("-" * widths[c] for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def _up(lab: Lab, with_lab: bool) -> None:
    t0 = time.monotonic()
    services = ("redis", "kafka", "jupyter") if with_lab else ("redis", "kafka")
    for service, info in lab.up(services).items():
        proc = getattr(lab, service)
        if info["state"] == "external":
            print(f"{service:<8} external  {info['address']} (from the environment; not started here)")
        elif info["state"] == "already running":
            print(f"{service:<8} already running  pid {info['pid']}  {proc.host}:{proc.port}")
        else:
            print(f"{service:<8} started  pid {info['pid']}  {proc.host}:{proc.port}  "
                  f"ready in {info['seconds']:.2f} s")
    print(f"services up in {time.monotonic() - t0:.1f} s; endpoints in {lab.endpoints_path}")
    if with_lab:
        print(f"\nJupyterLab is running: open {lab.jupyter.url}\n"
              "(stop everything with `make services-down`)")


class _Stop(Exception):
    """Raised by the signal handler of ``up --foreground``."""


def _foreground(lab: Lab, with_lab: bool, grace: float = 15.0) -> int:
    """``up --foreground`` (a container's main process): start, stay until SIGTERM/SIGINT/SIGHUP, then
    stop everything the course started and return 0. Returns 1 if JupyterLab stays down for
    ``grace`` seconds (a crash; a ``restart jupyter`` comes back sooner) or the start failed."""
    def stop(signum, _frame):
        raise _Stop(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    code, down_since = 0, None
    try:
        _up(lab, with_lab)
        sys.stdout.flush()
        while True:
            time.sleep(1)
            if with_lab and not lab.jupyter.running:
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > grace:
                    print(f"JupyterLab exited; last lines of {lab.jupyter.log_path}:\n"
                          f"{tail(lab.jupyter.log_path, 15)}", file=sys.stderr)
                    code = 1
                    break
            else:
                down_since = None
    except _Stop as sig:
        print(f"{sig}: stopping the course services ...")
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the clean stop short
        for service, pid in lab.down().items():
            if pid:
                print(f"{service:<8} stopped (pid {pid})")
        sys.stdout.flush()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.services", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start Redis and Kafka (idempotent)")
    up.add_argument("--lab", action="store_true", help="also start JupyterLab on 127.0.0.1 (make lab)")
    up.add_argument("--foreground", action="store_true",
                    help="stay until SIGTERM/SIGINT, then stop everything and exit 0 (a container's main process)")
    sub.add_parser("down", help="stop what the course started")
    sub.add_parser("status", help="table of the course services")
    logs = sub.add_parser("logs", help="last lines of a service's log")
    logs.add_argument("service", nargs="?", choices=["redis", "kafka", "jupyter"])
    logs.add_argument("-n", type=int, default=30)
    for name in ("kill", "restart"):
        p = sub.add_parser(name, help=f"{name} a course service ({'SIGKILL' if name == 'kill' else 'stop + start'})")
        p.add_argument("service", choices=["redis", "kafka", "jupyter"])
    args = parser.parse_args(argv)

    try:
        lab = Lab()
        if args.cmd == "up" and args.foreground:
            return _foreground(lab, args.lab)
        if args.cmd == "up":
            _up(lab, args.lab)
        elif args.cmd == "down":
            for service, pid in lab.down().items():
                print(f"{service:<8} {f'stopped (pid {pid})' if pid else 'was not running'}")
        elif args.cmd == "status":
            print(_table(lab.status()))
        elif args.cmd == "logs":
            for service in [args.service] if args.service else ["redis", "kafka"]:
                proc = getattr(lab, service)
                print(f"==> {proc.log_path} <==\n{tail(proc.log_path, args.n)}")
        elif args.cmd == "kill":
            pid = getattr(lab, args.service).kill()
            print(f"{args.service}: {f'killed pid {pid} with SIGKILL' if pid else 'was not running'}")
        elif args.cmd == "restart":
            seconds = getattr(lab, args.service).restart()
            print(f"{args.service}: restarted, ready in {seconds:.2f} s")
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
