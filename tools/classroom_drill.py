"""The classroom drill: a room of learners on ONE shared Redis and ONE shared Kafka, at the same time.

Each learner is a separate process with its own ``COURSE_LEARNER`` (``drill-1`` ... ``drill-N``), all
started together against the same servers (``REDIS_URL`` / ``KAFKA_BOOTSTRAP`` or the course's own).
A learner process:

1. leaves *sentinels* in its own namespace (a string, a list, a hash, a stream whose group holds 4
   pending entries; a Kafka topic with 10 records and a group with committed offsets), writes their
   digest, and waits until every learner has done the same;
2. runs the notebooks in a Jupyter kernel of its own -- the fast form (``make test``): one kernel, and
   for each notebook only the cells of its core experiment (``PARTS``: the notebook's own code, the same
   helper calls); the full form (``make classroom-drill``): Run All of each notebook, a fresh kernel each;
3. checks that its counts are exact (``PARTS[nb].check`` reads the notebook's ``measured``: missed
   messages == those published while away, the one job lost with BRPOP and none with BLMOVE, pending
   entries == reclaimed, every group read every record, lag 0, the view == the recount, ...);
4. waits for the others, then compares the digest of EVERY learner's sentinels with the one written in
   step 1 (nothing of one learner is touched by another), then deletes its own sentinels.

The parent collects the reports and checks that no learner left a name behind, apart from names a
notebook's cleanup says it leaves for the next run and topics re-created empty after a cleanup (both
printed as notes).

    python tools/classroom_drill.py [--learners 5] [--full] [--notebooks 00,01,...] [--json report.json]

Notebooks not in the drill, and why, are in ``NOT_IN_DRILL`` (they need servers of their own).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
sys.path.insert(0, str(ROOT))


@dataclass
class Part:
    cells: list[str]            # tags, or "defines:NAME" (the first code cell that assigns NAME)
    check: Callable[[dict], list[str]]
    what: str


def _eq(problems: list, label: str, got, want) -> None:
    if got != want:
        problems.append(f"{label}: {got!r} != {want!r}")


def check00(m: dict) -> list[str]:
    rows = m.get("roundtrips", [])
    bad = [f"{r['check']}: {r['status']} {r.get('measured')}" for r in rows if r["status"] not in ("OK", "SLOW")]
    return bad + ([] if len(rows) == 4 else [f"{len(rows)} round-trip rows, not 4"])


def check01(m: dict) -> list[str]:
    c, p = m["c03"], []
    _eq(p, "missed == published while away", c["missed"], c["during"])
    _eq(p, "received", c["received"], c["published"] - len(c["during"]))
    if not c["during"]:
        p.append("nothing was published while the dashboard was away")
    return p


def check02(m: dict) -> list[str]:
    b, rel, p = m["brpop"], m.get("reliable"), []
    _eq(p, "BRPOP SIGKILL return codes", b["returncodes"], {"doomed-mid": -9, "doomed-after": -9})
    _eq(p, "BRPOP lost ids", b["lost_ids"], [b["victim_mid"]])
    _eq(p, "BRPOP killed worker's unfinished job", b["killed_unfinished"], [b["victim_mid"]])
    _eq(p, "BRPOP duplicates", b["duplicates"], 0)
    _eq(p, "BRPOP still queued", b["still_queued"], 0)
    if rel is None:                                  # the fast form stops after the BRPOP crash
        return p
    _eq(p, "BLMOVE lost", rel["lost"], 0)
    _eq(p, "BLMOVE still queued", rel["still_queued"], 0)
    _eq(p, "BLMOVE done but unacked", rel["killed_done_unacked"], [rel["victim_after"]])
    if rel["victim_after"] not in rel["duplicate_ids"]:
        p.append(f"BLMOVE: {rel['victim_after']} (killed before its ack) did not run twice")
    return p


def check03(m: dict) -> list[str]:
    c, p = m["crash"], []
    held = c["doomed_read"]
    _eq(p, "SIGKILL return code", c["returncode"], -9)
    _eq(p, "pending before == read by the dead consumer", c["pending_before"], held)
    _eq(p, "reclaimed == pending before", c["claimed"], c["pending_before"])
    _eq(p, "pending after the reclaim", c["pending_after"], 0)
    _eq(p, "entries handled", sorted(c["runs"]), sorted(c["produced"]))
    _eq(p, "handled twice", c["twice"], c["doomed_handled"])
    _eq(p, "redeliveries", c["redeliveries"], {e: 1 for e in held})
    return p


def check04(m: dict) -> list[str]:
    rd, n, p = m["reads"], m["produced"], []
    _eq(p, "Kafka first/second read, stored", (rd["kafka_first"], rd["kafka_second"], rd["kafka_stored"]), (n, n, n))
    _eq(p, "the same records twice", rd["same_records"], True)
    _eq(p, "List first/second read, left", (rd["list_first"], rd["list_second"], rd["list_stored"]), (n, 0, 0))
    _eq(p, "key -> partition", m["key_partitions"], {k: [v] for k, v in m["key_predicted"].items()})
    return p


def check05(m: dict) -> list[str]:
    ind, rp, later, p = m["independent"], m["replay"], m["months_later"], []
    _eq(p, "distinct records per group", ind["distinct"], {g: ind["produced"] for g in ind["distinct"]})
    _eq(p, "replay from the beginning", rp["from_beginning"], rp["produced"])
    _eq(p, "replay since T", rp["since_T"], rp["expected_since_T"])
    _eq(p, "new group read every retained record", later["read"], later["retained"])
    _eq(p, "new group's lag (committed == end)", later["committed"], later["end"])
    return p


def check08(m: dict) -> list[str]:
    rp, p = m["repartition"], []
    _eq(p, "keys moved == murmur2 % 3 vs % 6", rp["moved"], rp["formula"])
    _eq(p, "one partition per key and phase", rp["one_partition_per_phase"], True)
    _eq(p, "records processed", rp["processed"], rp["sent"])
    _eq(p, "records waiting when the stalled group went again", rp["lag"], rp["sent"])
    _eq(p, "some moved key processed out of order", bool(rp["late_moved"]), True)
    return p


def check09(m: dict) -> list[str]:
    lv, p = m["live"], []
    _eq(p, "view == recount from Kafka", lv["equal"], True)
    _eq(p, "orders in the topic == produced", lv["in_topic"], lv["produced"])
    _eq(p, "extra cents in the view", lv["extra_cents"], 0)
    return p


PARTS: dict[str, Part] = {
    "00": Part(["setup", "exp-servers", "exp-roundtrips", "cleanup"], check00,
               "5 timed messages through Pub/Sub, a List, a Stream and a Kafka topic"),
    "01": Part(["setup", "predict-missed", "exp-disconnect", "cleanup"], check01,
               "a subscriber away for 0.5 s misses exactly the prices published meanwhile"),
    "02": Part(["setup", "predict-brpop", "exp-brpop-crash", "exp-brpop-stop", "exp-brpop-outcome", "cleanup"],
               check02, "2 of 4 BRPOP workers SIGKILLed: exactly the job one held is lost (Run All: and none "
                        "with BLMOVE + reaper)"),
    "03": Part(["setup", "defines:MIN_IDLE_MS", "exp-crash", "exp-pending", "exp-claim", "exp-reclaim", "cleanup"],
               check03, "a consumer SIGKILLed with 8 pending entries: XAUTOCLAIM reclaims exactly those"),
    "04": Part(["setup", "exp-create", "exp-keys", "exp-read", "exp-reread", "cleanup"], check04,
               "keyed events land where murmur2 says; two reads see every record, a List pop removes"),
    "05": Part(["setup", "predict-independent", "exp-independent", "exp-independent-table", "exp-orders",
                "exp-replay-beginning", "exp-replay-timestamp", "defines:guess_first", "exp-months-later",
                "cleanup"], check05,
               "3 groups at 3 speeds each read every record; replay from 0, from a time, a new group"),
    "08": Part(["setup", "defines:guess_moved", "exp-repartition", "exp-repartition-count", "cleanup"], check08,
               "3 -> 6 partitions on a live topic: the keys that move are the ones murmur2 predicts"),
    "09": Part(["setup", "exp-start", "predict-live", "exp-live", "exp-live-check", "cleanup"], check09,
               "generator -> Kafka -> processor -> Redis view: the view equals the recount"),
}

NOT_IN_DRILL = {
    "06": "its figures are latency and throughput, which on a shared server measure the room's load, not the "
          "tool; section 5 starts a full-JIT Kafka broker of its own and section 4 runs redis-benchmark, both on "
          "the learner's machine (the local setup).",
    "07": "it SIGKILLs servers: a throwaway redis-server per setting and a throwaway 3-broker Kafka cluster on the "
          "learner's machine (the local setup: redis-server and the Kafka jars); five of those at once do not fit "
          "a 2-core machine.",
    "10": "it reads the learner's own results file (the figures of 00-09) and touches no server.",
}


# --------------------------------------------------------------------------- one learner (its own process)

def _select(nb, selectors: list[str]) -> list[int]:
    import ast

    picked = []
    for sel in selectors:
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if sel.startswith("defines:"):
                try:
                    tree = ast.parse(cell.source)
                except SyntaxError:
                    continue
                names = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                         if isinstance(t, ast.Name)}
                names |= {e.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                          if isinstance(t, ast.Tuple) for e in t.elts if isinstance(e, ast.Name)}
                hit = sel.split(":", 1)[1] in names
            else:
                hit = sel in cell.metadata.get("tags", [])
            if hit:
                picked.append(i)
                break
        else:
            raise LookupError(f"no code cell for {sel!r}")
    return picked


class Kernel:
    """One Jupyter kernel (a process of its own) running notebook cells."""

    def __init__(self, env: dict, timeout: int = 240):
        import nbformat
        from nbclient import NotebookClient

        self.nb = nbformat.v4.new_notebook()
        self.client = NotebookClient(self.nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
        self.client.km = self.client.create_kernel_manager()
        self.client.start_new_kernel(env=env)
        self.client.start_new_kernel_client()

    def run(self, cell) -> None:
        self.nb.cells.append(cell)
        try:
            self.client.execute_cell(cell, len(self.nb.cells) - 1)
        finally:
            self.nb.cells.pop()

    def value(self, expr: str):
        import nbformat

        cell = nbformat.v4.new_code_cell(f"print(__import__('json').dumps({expr}, default=str))")
        self.run(cell)
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        return json.loads(text.strip().splitlines()[-1])

    def close(self) -> None:
        self.client._cleanup_kernel()


def kernel_env(name: str) -> dict:
    return {**os.environ, "COURSE_LEARNER": name,
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}


def run_part(kernel: Kernel, number: str, part: Part) -> dict:
    """The core experiment of notebook ``number`` in ``kernel``; its measured dict and exact-count problems."""
    import nbformat

    path = next(NOTEBOOKS.glob(f"{number}_*.ipynb"))
    nb = nbformat.read(str(path), as_version=4)
    t0, error, problems, where = time.monotonic(), None, [], "selecting cells"
    try:
        for index in _select(nb, part.cells):
            where = f"cell {index} {nb.cells[index].metadata.get('tags', [])}"
            kernel.run(nb.cells[index])
        where = "the exact-count check"
        problems = part.check(kernel.value("measured"))
    except Exception as exc:  # noqa: BLE001  (reported, with the cell that failed)
        last = str(exc).strip().splitlines()[-1][:400] if str(exc).strip() else ""
        error = f"{where}: {type(exc).__name__}: {last}"
        with contextlib.suppress(Exception):   # leave nothing behind, whatever failed
            kernel.run(nb.cells[_select(nb, ["cleanup"])[0]])
    return {"notebook": number, "seconds": round(time.monotonic() - t0, 1), "error": error, "problems": problems}


def run_full(name: str, number: str, part: Part | None) -> dict:
    """Run All of notebook ``number`` in a fresh kernel (as a learner would), then the exact-count checks.
    ``left`` lists the names the notebook's cleanup itself reports it leaves for the next run (notebook
    08: the share group of the member it SIGKILLed, which the broker does not delete while that member's
    session lasts)."""
    from time_notebooks import execute

    path = next(NOTEBOOKS.glob(f"{number}_*.ipynb"))
    row = execute(path, {"COURSE_LEARNER": name}, append=MEASURED)
    problems, left = [], []
    if not row["error"]:
        last = row["nb"].cells[-1]                     # the appended cell: measured and what cleanup left, as JSON
        text = "".join(o.get("text", "") for o in last.outputs if o.get("output_type") == "stream")
        found = json.loads(text.strip().splitlines()[-1])
        left = found["left"]
        problems = part.check(found["measured"]) if part is not None else []
    return {"notebook": number, "seconds": row["seconds"], "error": row["error"], "problems": problems,
            "left": left}


MEASURED = """import json as _json
_cleaned = globals().get("cleaned")
print(_json.dumps({"measured": measured, "left": list(_cleaned.get("groups left for the next run", []))
                   if isinstance(_cleaned, dict) else []}, default=str))"""


# --------------------------------------------------------------------------- sentinels

def sentinel_names(who: str) -> tuple[str, str]:
    from helpers import config

    return f"{config.COURSE}:{who}:drill:", f"{config.COURSE}.{who}.drill."


def make_sentinels(r, admin, ns) -> None:
    """Names in this learner's namespace that nobody else may change: Redis keys of four types (a
    stream with a group holding 4 pending entries) and a topic with 10 records and a committed group."""
    from kafka import TopicPartition
    from kafka.admin import NewTopic
    from kafka.structs import OffsetAndMetadata

    from helpers import clients

    r.set(ns.key("string"), "untouched")
    r.rpush(ns.key("list"), *[f"job-{i}" for i in range(10)])
    r.hset(ns.key("hash"), mapping={f"f{i}": i for i in range(10)})
    for i in range(10):
        r.xadd(ns.key("stream"), {"n": i}, id=f"{i + 1}-0")
    r.xgroup_create(ns.key("stream"), "g", id="0")
    r.xreadgroup("g", "c", {ns.key("stream"): ">"}, count=4)
    topic = ns.topic("sentinel")
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)], timeout_ms=15000)
    producer = clients.kafka_producer()
    for i in range(10):
        producer.send(topic, value=f"s{i}".encode(), partition=i % 2).get(timeout=15)
    producer.close()
    consumer = clients.kafka_consumer(group_id=ns.group("sentinel"), enable_auto_commit=False)
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(3, "", -1),
                     TopicPartition(topic, 1): OffsetAndMetadata(2, "", -1)})
    consumer.close()


def digest(r, admin, who: str) -> dict:
    """What is on the servers under learner ``who``'s sentinel names (keys with a hash of their DUMP,
    the stream group's pending count; topics with end offsets; groups with committed offsets)."""
    from helpers import groups

    rprefix, kprefix = sentinel_names(who)
    keys = {}
    for key in sorted(r.scan_iter(match=rprefix + "*", count=500)):
        dump = r.dump(key)
        keys[key] = {"type": r.type(key), "dump": hashlib.sha1(dump or b"").hexdigest()}
        if keys[key]["type"] == "stream":
            keys[key]["pending"] = r.xpending(key, "g")["pending"]
    topics = {t: groups.offsets(admin, t) for t in sorted(admin.list_topics()) if t.startswith(kprefix)}
    found = [g.get("group_id") if isinstance(g, dict) else g[0] for g in admin.list_groups()]
    committed = {g: groups.committed(admin, g) for g in sorted(x for x in found
                                                               if isinstance(x, str) and x.startswith(kprefix))}
    return json.loads(json.dumps({"keys": keys, "topics": topics, "groups": committed}))


def _changed(before: dict, after: dict) -> str:
    """Which sentinel names differ: ``"key X changed, topic Y missing, ..."``."""
    out = []
    for kind in ("keys", "topics", "groups"):
        b, a = before.get(kind, {}), after.get(kind, {})
        out += [f"{kind[:-1]} {n} " + ("missing" if n not in a else "appeared" if n not in b else "changed")
                for n in sorted(set(b) | set(a)) if b.get(n) != a.get(n)]
    return ", ".join(out)


def _barrier(folder: Path, stage: str, name: str, learners: int, timeout: float) -> None:
    (folder / f"{name}.{stage}").write_text(str(time.time()))
    deadline = time.monotonic() + timeout
    while len(list(folder.glob(f"*.{stage}"))) < learners:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(list(folder.glob(f'*.{stage}')))} of {learners} learners reached "
                               f"'{stage}' within {timeout:.0f} s")
        time.sleep(0.2)


def learner(name: str, folder: Path, learners: int, numbers: list[str], full: bool) -> dict:
    os.environ["COURSE_LEARNER"] = name
    from helpers import clients, config

    r, admin = clients.require_redis(), clients.require_kafka()
    ns = config.namespace("drill")
    report = {"learner": name, "notebooks": [], "sentinels": {}, "error": None}
    try:
        clients.cleanup_redis(r, ns, previous_runs=True)
        clients.cleanup_kafka(admin, ns, previous_runs=True)
        make_sentinels(r, admin, ns)
        (folder / f"{name}.digest.json").write_text(json.dumps(digest(r, admin, name)))
        _barrier(folder, "ready", name, learners, 180)
        t0 = time.monotonic()
        if full:
            report["notebooks"] = [run_full(name, n, PARTS.get(n)) for n in numbers]
        else:
            kernel = Kernel(kernel_env(name))
            try:
                report["notebooks"] = [run_part(kernel, n, PARTS[n]) for n in numbers]
            finally:
                kernel.close()
        report["seconds"] = round(time.monotonic() - t0, 1)
        _barrier(folder, "done", name, learners, 900 if full else 400)
        for other in sorted(p.name.split(".")[0] for p in folder.glob("*.digest.json")):
            before = json.loads((folder / f"{other}.digest.json").read_text())
            after = digest(r, admin, other)
            report["sentinels"][other] = "untouched" if after == before else _changed(before, after)
        _barrier(folder, "verified", name, learners, 120)
    except Exception as exc:  # noqa: BLE001
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        clients.cleanup_redis(r, ns)
        clients.cleanup_kafka(admin, ns)
    return report


# --------------------------------------------------------------------------- the room (the parent)

def leftovers(r, admin, names: list[str]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Names on the servers that still belong to any of the drill's learners (after everyone cleaned
    up), and apart from them the topics that exist again but EMPTY: a client's late metadata request
    re-created them after the cleanup deleted them (the broker's ``auto.create.topics.enable``); the
    next run's setup deletes those (dead runs' names)."""
    from helpers import config, groups

    topics = admin.list_topics()
    found = [g.get("group_id") if isinstance(g, dict) else g[0] for g in admin.list_groups()]
    left, recreated = {}, {}
    for who in names:
        prefix = f"{config.COURSE}.{who}."
        keys = sorted(r.scan_iter(match=f"{config.COURSE}:{who}:*", count=500))
        mine = sorted(t for t in topics if t.startswith(prefix))
        empty = [t for t in mine if not any(groups.offsets(admin, t).values())]
        kafka = [t for t in mine if t not in empty] + sorted(g for g in found if isinstance(g, str) and g.startswith(prefix))
        if keys or kafka:
            left[who] = keys + kafka
        if empty:
            recreated[who] = empty
    return left, recreated


def room(learners: int = 5, numbers: list[str] | None = None, full: bool = False, timeout: float = 1200) -> dict:
    """Start ``learners`` learner processes at once and collect their reports."""
    from helpers import clients, config

    numbers = numbers or [n for n in PARTS if any(NOTEBOOKS.glob(f"{n}_*.ipynb"))]
    names = [f"drill-{i}" for i in range(1, learners + 1)]
    folder = Path(tempfile.mkdtemp(prefix="streamslab-drill-"))
    shared = {"REDIS_URL": config.redis_url(), "KAFKA_BOOTSTRAP": config.kafka_bootstrap()}   # the room's servers
    libs = config.course_dir() / "kafka" / "libs"
    t0 = time.monotonic()
    procs = {}
    for name in names:
        # like a learner at a machine of their own: the room's servers by address, their own .course
        # (throwaway servers, results), the broker jars shared
        home = folder / name
        (home / "kafka").mkdir(parents=True)
        if libs.is_dir():
            (home / "kafka" / "libs").symlink_to(libs)
        env = {**os.environ, **shared, "COURSE_LEARNER": name, "COURSE_QUICK": "1", "COURSE_DIR": str(home),
               "COURSE_RESULTS": str(home / "results.jsonl"),
               "PYTHONPATH": str(ROOT / "tools") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        cmd = [sys.executable, str(Path(__file__).resolve()), "learner", name, "--dir", str(folder),
               "--learners", str(learners), "--notebooks", ",".join(numbers)] + (["--full"] if full else [])
        procs[name] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reports = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=max(1, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        try:
            reports[name] = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            reports[name] = {"learner": name, "error": f"exit {proc.returncode}: {err.strip()[-600:]}",
                             "notebooks": [], "sentinels": {}}
    r, admin = clients.require_redis(), clients.require_kafka()
    left, recreated = leftovers(r, admin, names)
    again = [t for topics in recreated.values() for t in topics]
    if again:                                            # the drill's own names: remove them now
        admin.delete_topics(again, timeout_ms=15000)
    return {"learners": names, "notebooks": numbers, "full": full, "seconds": round(time.monotonic() - t0, 1),
            "reports": reports, "leftovers": left, "recreated_empty": recreated}


def failures(result: dict) -> list[str]:
    """Every problem of a drill, one line each (empty when the room passed)."""
    lines = []
    for name, rep in result["reports"].items():
        if rep.get("error"):
            lines.append(f"{name}: {rep['error']}")
        for nb in rep.get("notebooks", []):
            lines += [f"{name} notebook {nb['notebook']}: {x}" for x in ([nb["error"]] if nb["error"] else [])
                      + nb["problems"]]
        missing = set(result["learners"]) - set(rep.get("sentinels", {}))
        lines += [f"{name}: could not check the sentinels of {who}" for who in sorted(missing)]
        lines += [f"{name}: the sentinels of {who} changed: {v}" for who, v in rep.get("sentinels", {}).items()
                  if v != "untouched"]
        done = [nb["notebook"] for nb in rep.get("notebooks", [])]
        if done != result["notebooks"]:
            lines.append(f"{name}: ran notebooks {done}, not {result['notebooks']}")
    for who, names in result["leftovers"].items():
        undeclared = sorted(set(names) - set(declared(result, who)))
        if undeclared:
            lines.append(f"left behind by {who}: {undeclared[:8]}")
    return lines


def declared(result: dict, who: str) -> list[str]:
    """The names ``who``'s notebooks said their cleanup leaves for the next run."""
    return [n for nb in result["reports"].get(who, {}).get("notebooks", []) for n in nb.get("left", [])]


def table(result: dict) -> str:
    rows = [f"{'notebook':10}" + "".join(f"{n:>10}" for n in result["learners"])]
    for i, number in enumerate(result["notebooks"]):
        cells = []
        for name in result["learners"]:
            nbs = result["reports"][name].get("notebooks", [])
            nb = nbs[i] if i < len(nbs) else None
            cells.append("-" if nb is None else f"{nb['seconds']:.0f}s " + ("ok" if not nb["error"] and not nb["problems"] else "FAIL"))
        rows.append(f"{number:10}" + "".join(f"{c:>10}" for c in cells))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/classroom_drill.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", nargs="?", default="room", choices=["room", "learner"])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--learners", type=int, default=5)
    parser.add_argument("--notebooks", help="comma-separated numbers (default: every notebook in the drill)")
    parser.add_argument("--full", action="store_true", help="Run All of each notebook per learner")
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="write the whole report here")
    args = parser.parse_args(argv)
    numbers = [n.strip().zfill(2) for n in args.notebooks.split(",")] if args.notebooks else None
    if args.role == "learner":
        print(json.dumps(learner(args.name, Path(args.dir), args.learners, numbers, args.full)), flush=True)
        return 0
    result = room(args.learners, numbers, args.full)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(table(result))
    problems = failures(result)
    print(f"{len(result['learners'])} learners at once, {'Run All' if args.full else 'core experiments'} of "
          f"notebooks {', '.join(result['notebooks'])}: {result['seconds']} s; "
          + ("every count exact, nothing of one learner touched by another, nothing left behind but what "
             "a notebook said it leaves."
             if not problems else f"{len(problems)} problem(s):"))
    for line in problems:
        print("  " + line)
    for who in result["leftovers"]:
        kept = sorted(set(result["leftovers"][who]) & set(declared(result, who)))
        if kept:
            print(f"  note: {who} left {kept}, as its notebook's cleanup said (deleted by its next run's setup)")
    for who, topics in result["recreated_empty"].items():
        print(f"  note: {who}'s topics {topics} exist again, empty, after its cleanup deleted them (re-created "
              "by a late metadata request: auto.create.topics.enable); its next run's setup deletes them")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
