"""``make bench``: the course's figures beside the native tools', measured in the same run.

Writes ``bench/results.csv`` (one row per comparison) and ``bench/results.md`` (the table, the
machine and the two targets: Redis round trip within 1.5x of redis-benchmark -c 1, Kafka end-to-end
p50 with the faster Python client within 2x of EndToEndLatency). Uses its own namespace (learner
``bench``) and deletes every key and topic it created, and stops the full-JIT broker it starts,
also when a step fails. ``--quick`` uses the test sizes; ``--sections`` picks a subset.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECTIONS = ("redis-rtt", "redis-rates", "jit", "kafka-rates", "kafka-e2e")
COLUMNS = ["experiment", "metric", "unit", "better", "course", "course_how", "native", "native_how", "ratio"]
TARGETS = {  # (experiment, metric, course_how) -> highest ratio the issue asks for
    ("Redis PING round trip, back to back", "p50", "redis-py, dedicated connection"): 1.5,
    ("Kafka end-to-end, send + ack + read back, one at a time", "p50", "confluent-kafka"): 2.0,
}


def versions() -> dict:
    from helpers import cli
    from helpers.services import get_lab

    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "?"

    from importlib.metadata import version

    import confluent_kafka

    java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=20).stderr.splitlines()
    return {"redis-server": get_lab().redis.version(), "redis-benchmark": first_line(["redis-benchmark", "--version"]),
            "kafka": get_lab().kafka.version(), "java": java[0] if java else "?", "python": platform.python_version(),
            "redis-py": version("redis"), "kafka-python": version("kafka-python"),
            "confluent-kafka": f"{version('confluent-kafka')} (librdkafka {confluent_kafka.libversion()[0]})",
            "kafka tools jar": next((p.name for p in cli.libs_dir().glob("kafka-tools-[0-9]*.jar")), "?")}


def run(sections, quick: bool, log=print) -> tuple[list[dict], dict]:
    from helpers import baselines, bench, clients, config, runs

    size = (lambda full, q: q) if quick else (lambda full, q: full)
    r, admin = clients.require_redis(), clients.require_kafka()
    ns = config.Namespace("bench", who="bench")
    runs.register(ns)                  # live while this runs: another bench's cleanup leaves its names alone
    clients.cleanup_redis(r, ns, previous_runs=True)
    clients.cleanup_kafka(admin, ns, previous_runs=True)
    baselines.stop_dead_bench_brokers(r)
    rows, notes = [], {"seconds": {}}
    kafka = config.kafka_bootstrap()
    started = [time.monotonic()]

    def lap(section: str) -> None:                     # seconds per section, in results.md
        now = time.monotonic()
        notes["seconds"][section] = round(now - started[0])
        started[0] = now
        log(f"  {section}: {notes['seconds'][section]} s")
    try:
        if "redis-rtt" in sections:
            log("Redis round trips: redis-benchmark -c 1 / redis-cli --latency beside redis-py ...")
            rows += bench.redis_round_trip(size(60_000, 3_000), paced_seconds=size(3, 1), rounds=size(3, 1))
            lap("redis-rtt")
        if "redis-rates" in sections:
            log("Redis PUBLISH / LPUSH / XADD rates beside redis-benchmark ...")
            rows += bench.redis_rates(ns, size(200_000, 5_000))
            lap("redis-rates")
        if "jit" in sections:
            log("Kafka: course broker (C1 only) vs a full-JIT broker, ProducerPerformance ...")
            broker = baselines.bench_broker(ns, max_seconds=900)
            broker.start()
            jit = bench.jit_check(ns, admin, broker, size(1_000_000, 30_000), rounds=size(3, 1), warmup=not quick)
            notes["jit"] = jit
            rows.append(bench.row("Kafka broker JVM: -XX:TieredStopAtLevel=1 vs full JIT (ProducerPerformance)",
                                  "rate", "records/s", "higher", jit["medians"]["course broker (C1 only)"],
                                  "course broker (C1 only), median", jit["medians"]["full-JIT broker"],
                                  "full-JIT broker, median"))
            if jit["caps"]:
                kafka = broker.bootstrap
            else:
                baselines.stop_bench_broker(ns)
            lap("jit")
        if "kafka-rates" in sections:
            log(f"Kafka producer / consumer rates beside ProducerPerformance / ConsumerPerformance ({kafka}) ...")
            rows += bench.kafka_rates(ns, admin, size(2_000_000, 50_000), size(1_000_000, 50_000),
                                      size(100_000, 5_000), bootstrap=kafka)
            lap("kafka-rates")
        if "kafka-e2e" in sections:
            log("Kafka end-to-end one at a time beside EndToEndLatency ...")
            rows += bench.kafka_e2e(ns, admin, size(5_000, 300), bootstrap=kafka)
            lap("kafka-e2e")
    finally:
        baselines.stop_bench_broker(ns)
        clients.cleanup_redis(r, ns, previous_runs=True)
        clients.cleanup_kafka(admin, ns, previous_runs=True)
    return rows, notes


def machine(quick: bool) -> dict:
    from helpers import results

    info = {**results.machine_info(), "quick": quick}
    info["cpu"] = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                       platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    info["load average (1 min) at the end"] = round(os.getloadavg()[0], 2)
    return info


def target_lines(rows) -> list[str]:
    out = []
    for (experiment, metric, how), limit in TARGETS.items():
        hit = next((r for r in rows if r["experiment"] == experiment and r["metric"] == metric
                    and r["course_how"].startswith(how)), None)
        if hit:
            word = "met" if hit["ratio"] <= limit else "NOT met"
            out.append(f"- {experiment} ({metric}), {how}: ratio **{hit['ratio']:.2f}** (target <= {limit}): {word}")
    return out


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"


def write(rows, notes, out_dir: Path, seconds: float, quick: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    m, v = machine(quick), versions()
    lines = [f"# Streams Lab bench — {time.strftime('%Y-%m-%d %H:%M %Z')}", "",
             f"`make bench` ({'quick sizes' if quick else 'full sizes'}, {seconds:.0f} s). Every row was measured in this "
             "run: the course's Python figure beside the native tool's on the same server. `ratio` = course / native: "
             "for a latency (lower is better) above 1 means the Python side is slower; for a rate (higher is "
             "better) below 1 means it is slower.", "",
             "| experiment | metric | unit | course | how | native | tool | ratio |", "|---|---|---|---:|---|---:|---|---:|"]
    for r in rows:
        lines.append(f"| {r['experiment']} | {r['metric']} | {r['unit']} | {_num(r['course'])} | {r['course_how']} | "
                     f"{_num(r['native'])} | {r['native_how']} | {r['ratio']:.2f} |")
    lines += ["", "## Targets", *target_lines(rows), ""]
    if "jit" in notes:
        jit = notes["jit"]
        lines += [f"Full JIT vs the course broker's `-XX:TieredStopAtLevel=1`: x{jit['ratio']} (medians of "
                  f"{len(jit['runs']['full-JIT broker'])} interleaved runs); "
                  + ("a cap: the Kafka rows used the full-JIT broker." if jit["caps"] else
                     "under the 15 % that would count as a cap: the Kafka rows used the course broker."), ""]
    if notes.get("seconds"):
        lines += ["Seconds per section: " + ", ".join(f"{k} {v}" for k, v in notes["seconds"].items()) + ".", ""]
    lines += ["## Machine", "", *[f"- {k}: {val}" for k, val in m.items()], "", "## Versions", "",
              *[f"- {k}: {val}" for k, val in v.items()], ""]
    (out_dir / "results.md").write_text("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the test sizes (seconds, not minutes)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--out", default=str(ROOT / "bench"), help="output folder (default bench/)")
    args = parser.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # a `kill` still runs run()'s cleanup
    t0 = time.monotonic()
    rows, notes = run(sections, args.quick)
    write(rows, notes, Path(args.out), time.monotonic() - t0, args.quick)
    print(Path(args.out, "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
