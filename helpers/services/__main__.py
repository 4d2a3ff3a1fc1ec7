"""``python -m helpers.services up|down|status|logs|kill|restart``."""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.services", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start Redis and Kafka (idempotent)")
    up.add_argument("--lab", action="store_true", help="also start JupyterLab on 127.0.0.1 (make lab)")
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
        if args.cmd == "up":
            t0 = time.monotonic()
            services = ("redis", "kafka", "jupyter") if args.lab else ("redis", "kafka")
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
            if args.lab:
                print(f"\nJupyterLab is running: open {lab.jupyter.url}\n"
                      "(stop everything with `make services-down`)")
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
