"""The deterministic kafka-python 3.0.12 bug reproductions (tools/kafka_python_repro.py), run through the CLI.

Each asserts that the bug still shows, so the day kafka-python fixes it this test fails and says which
course workaround can go (docs/known-client-bugs.md). The leader-drop reproduction is probabilistic and
is not run here (its figures are in the doc).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "kafka_python_repro.py"


def run_repro(bug: str, *extra: str) -> tuple[int, int, str]:
    """Run one reproduction once; return (runs that showed the bug, runs, the output)."""
    proc = subprocess.run([sys.executable, str(TOOL), bug, "--runs", "1", *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    m = re.search(r"^summary: .* in (\d+) of (\d+) runs", proc.stdout, re.M)
    assert m, out
    return int(m.group(1)), int(m.group(2)), out


def test_auto_create_bug_still_present(lab):
    shown, runs, out = run_repro("auto-create")
    assert "control (setting copied to the ClusterMetadata): created in 0 of 1" in out, out
    assert (shown, runs) == (1, 1), (
        "kafka-python no longer creates a topic for KafkaProducer(allow_auto_create_topics=False): the bug "
        "is fixed, so the workaround can go: helpers/kafka_clients.py _honour_auto_create (see "
        "docs/known-client-bugs.md, auto-create)\n" + out)


def test_pause_resume_bug_still_present(lab):
    shown, runs, out = run_repro("pause-resume")
    assert (shown, runs) == (1, 1), (
        "kafka-python now fetches a resumed partition again: the bug is fixed, so the workaround can go: "
        "helpers/scaling.py ordered_reader may pause() instead of seek()-ing back what a held poll "
        "returned (see docs/known-client-bugs.md, pause-resume)\n" + out)


def test_pause_resume_repro_counts_zero_with_the_fix_simulated(lab):
    """The reproduction is not a test that cannot fail: with the fix simulated (--clear-drained) the
    resumed partition is read to its end and the count is 0."""
    shown, runs, out = run_repro("pause-resume", "--clear-drained")
    assert (shown, runs) == (0, 1), out
