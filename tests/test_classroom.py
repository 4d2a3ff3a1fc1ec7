"""Issue 13, a room of learners on ONE shared Redis and ONE shared Kafka (tools/classroom_drill.py).

Five learners at once, each a separate process with its own ``COURSE_LEARNER`` and its own Jupyter
kernel, run the core experiment of every notebook that can run on shared servers (the notebook's own
cells, see ``classroom_drill.PARTS``): each learner's counts must be exact (the missed messages are
exactly those published while away, exactly the held job is lost, pending == reclaimed, every group
reads every record, the view equals the recount, ...), every learner's sentinels (Redis keys of four
types, a stream group with pending entries, a topic and a committed group) must be exactly as their
owner left them when all the others are done, and nobody may leave a name behind (a topic re-created
empty by a late metadata request after its cleanup is printed as a note; see classroom_drill.leftovers).
``make classroom-drill`` is the full form: Run All of each of those notebooks per learner.
"""

import sys
import time

import pytest
from conftest import NOTEBOOKS, ROOT

sys.path.insert(0, str(ROOT / "tools"))
import classroom_drill  # noqa: E402

LEARNERS = 5


def test_every_notebook_is_in_the_drill_or_says_why_not():
    numbers = {p.name[:2] for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    unclassified = numbers - set(classroom_drill.PARTS) - set(classroom_drill.NOT_IN_DRILL)
    assert not unclassified, f"notebooks {sorted(unclassified)}: add a drill part or a reason in NOT_IN_DRILL"
    assert not set(classroom_drill.PARTS) & set(classroom_drill.NOT_IN_DRILL)


@pytest.mark.notebook
def test_five_learners_at_once_on_shared_servers(lab):
    t0 = time.monotonic()
    result = classroom_drill.room(LEARNERS, timeout=540)
    print(classroom_drill.table(result))
    print(f"classroom drill: {LEARNERS} learners, notebooks {', '.join(result['notebooks'])}: "
          f"{time.monotonic() - t0:.1f} s")
    assert len(set(result["learners"])) == LEARNERS >= 5
    assert set(result["notebooks"]) == {n for n in classroom_drill.PARTS if any(NOTEBOOKS.glob(f"{n}_*.ipynb"))}
    for who, topics in result["recreated_empty"].items():   # reported, not failed: see leftovers()
        print(f"note: {who}'s topics {topics} were re-created empty after its cleanup (auto.create.topics.enable)")
    problems = classroom_drill.failures(result)
    assert problems == [], "\n".join(problems)
    # every learner checked every learner's sentinels, and ran every notebook's core experiment
    for name, report in result["reports"].items():
        assert set(report["sentinels"]) == set(result["learners"]), name
        assert [nb["notebook"] for nb in report["notebooks"]] == result["notebooks"], name
