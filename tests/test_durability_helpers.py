"""Notebook 07's helpers without the notebook: counting by id, and the exit hook that stops only the
servers its own process started (a late-exiting old kernel must never stop a newer run's servers)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from helpers import durability
from helpers.kafka_durability import tally
from helpers.services import Lab

ROOT = Path(__file__).resolve().parent.parent


def test_id_ranges_and_redis_tally():
    assert durability.id_ranges([]) == "none"
    assert durability.id_ranges([9, 3, 4, 5, 11, 12]) == "3-5, 9, 11-12"
    run = {"acked": {i: i / 100 for i in range(10)}, "killed_at": 0.1, "seconds": 0.1,
           "latencies_ms": [1.0] * 10}
    c = durability.redis_tally(run, kept_seqs=[0, 1, 2, 3, 4, 5, 6, 10])      # 10: applied, never answered
    assert (c["acknowledged"], c["kept"], c["lost"]) == (10, 7, 3)
    assert c["lost_ids"] == [7, 8, 9] and c["lost_ranges"] == "7-9" and c["unacknowledged_kept"] == 1
    assert c["window_ms"] == 30.0 and c["writes_per_s"] == 100


def test_kafka_tally_counts_by_id():
    class Producer:
        sent = dict.fromkeys(range(6), 0.0)
        acked = {0: (0, 0.1), 1: (1, 0.1), 2: (2, 0.1), 4: (3, 0.2)}
        failed = {5: "KafkaTimeoutError"}

    c = tally(Producer(), log=[0, 1, 1, 3, 4])         # 1 twice, 2 lost, 3 written but never acknowledged
    assert (c["acknowledged"], c["kept"], c["lost"], c["duplicated"]) == (4, 3, 1, 1)
    assert c["lost_ids"] == [2] and c["unacknowledged_kept"] == 1 and c["failed_errors"] == {"KafkaTimeoutError": 1}


def test_exit_hook_stops_only_what_its_process_started(tmp_path):
    lab = Lab(tmp_path / "course", log=lambda *_: None)
    theirs = lab.extra_redis("nb07-theirs")                    # started by THIS process, not by the child below
    script = textwrap.dedent(f"""
        from helpers import durability
        from helpers.services import Lab
        lab = Lab({str(tmp_path / "course")!r}, log=lambda *_: None)
        mine = lab.extra_redis("nb07-mine")
        durability.stop_at_exit(lab)
        print(mine.pid)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    child_pid = int(out.stdout.split()[-1])
    try:
        assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE
        assert theirs.running                                  # another process's server: left alone
        assert durability.still_running(lab) == ["redis-nb07-theirs"]
    finally:
        durability.stop_everything(lab)
    assert durability.still_running(lab) == [] and not theirs.running
