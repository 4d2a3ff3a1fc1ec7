"""Notebook 08: a consumer group's throughput grows with consumers up to the partition count and not
past it, per-key order holds within partitions, adding partitions moves a measured share of keys (and
breaks their order in flight), one stream's keyslot maps to one node of a real Redis Cluster while
several stream keys spread the load, and a Kafka share group with more consumers than partitions uses
them all and redelivers a SIGKILLed consumer's job with delivery count 2 (beside a Redis Stream group).

The notebook runs once (fresh kernel, COURSE_QUICK=1) for the module; the tests read ``measured``,
exercise the checks, then clean up and Run All again in the same kernel.
"""

import pytest
from conftest import cleanup_then_rerun, plain, run_notebook, solution

from helpers import config

# serial: asserts throughput ratios (1..4 consumers, 1 vs 3 Redis Cluster shards), which other tests
# running on the same 2 cores would distort
pytestmark = [pytest.mark.notebook, pytest.mark.serial]

CLUSTER = f"nb08-{config.learner()}"   # the notebook's CLUSTER_NAME (COURSE_LEARNER is set by conftest)


def cluster_nodes_running(lab) -> int:
    from helpers.services.cluster import find_clusters

    found = find_clusters(lab.home / "extra").get(f"redis-{CLUSTER}")
    return 0 if found is None else sum(n.running for n in found.nodes)


@pytest.fixture(scope="module")
def nb(lab):
    from helpers import sharding

    try:
        with run_notebook("08") as tb:
            yield tb
    finally:  # a failed cell must not leave the throwaway cluster running
        sharding.stop_cluster(lab, CLUSTER)


def check_scaling(s: dict) -> None:
    thr = {int(k): v for k, v in s["throughput"].items()}
    assert set(thr) == {1, 2, 3, 4}
    assert thr[2] / thr[1] > 1.15, thr         # 2 consumers: partitions split 2 + 1 -> ideally x1.5
    assert thr[3] / thr[1] > 0.6 * 3, thr      # P consumers on P partitions: ideally x3
    assert thr[4] / thr[3] < 1.3, thr          # the (P+1)-th consumer adds nothing
    assert len(s["idle_at_4"]) == 1, s["idle_at_4"]
    idle = s["idle_at_4"][0]
    assert s["per_member_at_4"].get(idle, 0) == 0 and sum(s["per_member_at_4"].values()) > 0
    four = s["assignment"]["4"]
    assert four[idle] == [] and sorted(p for parts in four.values() for p in parts) == [0, 1, 2]
    assert s["sent"] == s["records"] == s["distinct"]   # every record processed once


def test_consumer_group_throughput_grows_to_partitions_not_past(nb):
    check_scaling(plain(nb, 'measured["scaling"]'))


def test_per_key_order_holds_within_a_partition(nb):
    s = plain(nb, 'measured["scaling"]')
    assert s["out_of_order"] == 0
    sample = plain(nb, 'scaling_runs[3]["sample"]')
    assert len({row["partition"] for row in sample}) == 1            # one key, one partition
    assert [row["seq"] for row in sorted(sample, key=lambda row: row["t"])] == list(range(len(sample)))
    assert len({row["member"] for row in sample}) >= 2                # ... read by several members in turn


def check_repartition(p: dict) -> None:
    assert p["one_partition_per_phase"]
    assert 0 < p["moved_fraction"] < 1 and len(p["moved"]) == round(p["moved_fraction"] * p["keys"])
    assert p["moved"] == p["formula"]                                 # murmur2(key) % 3 vs % 6
    assert p["processed"] == p["sent"]
    assert p["lag"] == p["sent"]                                      # the stalled group took nothing
    assert p["in_flight"]["old_after"] > 0, p["in_flight"]           # old records still waiting at the change
    assert len(p["late_moved"]) > 0, p["in_flight"]                   # ... so moved keys lost their order
    assert p["late_kept"] == {}                                       # keys that stayed keep their order
    assert set(p["late_moved"]) <= set(p["moved"])                     # only moved keys lose their order
    assert "PartitionCount: 6" in p["kafka_topics"]                  # kafka-topics --describe agrees


def test_repartitioning_moves_keys_and_breaks_their_order(nb):
    check_repartition(plain(nb, 'measured["repartition"]'))


def check_cluster(k: dict, c: dict, x: dict) -> None:
    assert k["holders"] == [k["owner"]] and k["moved_replies"] == 2  # one stream: one slot, one node
    assert 0 <= k["slot"] < 16384
    assert c["busy_nodes"] == {"A": 1, "B": 1, "C": 3}, c["busy_nodes"]
    assert sorted(c["node_calls"]["B"]) == [0, 0, c["entries"]]
    rates = c["rates"]
    capacity = 1000 / c["server_ms"]                                  # one node: one entry at a time
    assert rates["A"] <= 1.05 * capacity and rates["B"] <= 1.05 * capacity, rates   # 1 or 3 writers: one node
    assert rates["C"] / rates["B"] > 1.5 and rates["C"] > 1.2 * capacity, rates     # 3 streams, 3 shards
    assert x["slots"][0] != x["slots"][1]
    assert "CROSSSLOT" in x["errors"]["the server"] or "same slot" in x["errors"]["the server"], x
    assert "same key slot" in x["errors"]["redis-py cluster client"], x


def test_one_stream_keyslot_maps_to_one_node(nb):
    check_cluster(plain(nb, 'measured["keyslot"]'), plain(nb, 'measured["cluster"]'), plain(nb, 'measured["crossslot"]'))


def check_queue(q: dict, lock_s: float) -> None:
    assert q["kill_codes"] == {"kafka c1": -9, "redis c1": -9}
    kafka_first = q["first_deliveries"]["kafka"]
    assert set(kafka_first) == {"c1", "c2", "c3", "c4"} and all(n > 0 for n in kafka_first.values()), kafka_first
    rows = {(x["system"], x["victim"]): [] for x in q["redelivered"]}
    for x in q["redelivered"]:
        rows[(x["system"], x["victim"])].append(x)
    assert set(rows) == {("kafka", "c1"), ("kafka", "c2"), ("redis", "c1"), ("redis", "c2")}
    for key, held in rows.items():
        for x in held:                          # every held job went to another consumer, 2nd delivery
            assert x["redelivered to"] not in (None, key[1]) and x["delivery count"] == 2, x
    assert max(x["after (s)"] for x in rows[("kafka", "c1")]) < lock_s / 2   # released at the disconnect
    assert min(x["after (s)"] for x in rows[("kafka", "c2")]) > lock_s - 2    # the acquisition lock
    assert min(x["after (s)"] for x in rows[("redis", "c1")]) > 1.0          # XAUTOCLAIM's min-idle
    for system in ("kafka", "redis"):
        assert len(q["done"][system]) == q["jobs"] and set(q["done"][system].values()) == {1}, q["done"][system]
        assert q["poison_deliveries"][system] == [1, 2, 3]
    assert [int(d["deliveries"]) for d in q["poison_dead_letters"]] == [3]
    assert q["ack_failed"] == []
    members = q["share_group_members"]                # kafka-share-groups --describe --members
    assert all(f" {c} " in members for c in ("c1", "c2", "c3", "c4")), members   # the killed c1 too (45 s session)


def test_share_group_uses_all_consumers_and_redelivers_with_count_2(nb):
    check_queue(plain(nb, 'measured["queue"]'), nb.value("LOCK_MS") / 1000)


def test_figures_recorded_against_claims(nb):
    from helpers import results

    for claim in ("C06", "C07", "C11", "C13", "C21"):
        rec = results.latest(claim, notebook="08")
        assert rec is not None and rec["notebook"] == "08", claim
    c21 = results.latest("C21", notebook="08")
    assert c21["value"] == pytest.approx(plain(nb, 'measured["repartition"]["moved_fraction"]'), abs=0.001)


SAME_TAG_FOR_ALL = """
def stream_keys(partition):
    return ns.key(f"{{jobs}}:{partition}"), ns.key(f"{{jobs}}:{partition}:dead")
"""

NO_TAG = """
def stream_keys(partition):
    return ns.key(f"jobs:{partition}"), ns.key(f"jobs:{partition}:dead")
"""


def test_exercises_stub_wrong_and_solution(nb, lab):
    assert nb.value("check_dead_letters.status") == "not-attempted"
    assert nb.value("check_moved_keys.status") == "not-attempted"
    assert cluster_nodes_running(lab) == 0                 # Run All ended with the cleanup cell
    nb.inject(solution("08_dead_letters"), pop=True)
    nb.execute_cell("check-dead-letters")
    assert nb.value("check_dead_letters.status") == "not-yet"
    assert "not running" in nb.value("check_dead_letters.message")
    nb.execute_cell("exp-cluster")                         # the learner starts section 3 again
    nb.inject(NO_TAG, pop=True)
    nb.execute_cell("check-dead-letters")
    assert nb.value("check_dead_letters.status") == "not-yet"
    assert "CROSSSLOT" in nb.value("check_dead_letters.message") or "slot" in nb.value("check_dead_letters.message")
    nb.inject(SAME_TAG_FOR_ALL, pop=True)
    nb.execute_cell("check-dead-letters")
    assert nb.value("check_dead_letters.status") == "not-yet"
    assert "one shard" in nb.value("check_dead_letters.message")
    nb.inject(solution("08_dead_letters"), pop=True)
    nb.execute_cell("check-dead-letters")
    assert nb.value("check_dead_letters.status") == "pass", nb.value("str(check_dead_letters)")
    nb.inject("def predict_moved(keys, old, new):\n    return set()", pop=True)
    nb.execute_cell("check-moved-keys")
    assert nb.value("check_moved_keys.status") == "not-yet"
    nb.inject(solution("08_moved_keys"), pop=True)
    nb.execute_cell("check-moved-keys")
    assert nb.value("check_moved_keys.status") == "pass", nb.value("str(check_moved_keys)")


def test_cleanup_stops_the_cluster_and_rerun_is_clean(nb, r, lab, kafka_admin):
    assert cluster_nodes_running(lab) == 3                 # restarted by the exercise test
    prefix = cleanup_then_rerun(nb, r)                 # cleanup, then every cell again (cleanup last)
    check_scaling(plain(nb, 'measured["scaling"]'))
    check_repartition(plain(nb, 'measured["repartition"]'))
    check_cluster(plain(nb, 'measured["keyslot"]'), plain(nb, 'measured["cluster"]'), plain(nb, 'measured["crossslot"]'))
    check_queue(plain(nb, 'measured["queue"]'), nb.value("LOCK_MS") / 1000)
    assert nb.value("check_dead_letters.status") == "not-attempted"      # the stub cells ran again
    assert cluster_nodes_running(lab) == 0                                # the rerun's cleanup stopped it
    assert list(r.scan_iter(match=prefix + "*")) == []
    kprefix = nb.value("ns.kafka_notebook_prefix")
    assert [t for t in kafka_admin.list_topics() if t.startswith(kprefix)] == []
    left = [g["group_id"] for g in kafka_admin.list_groups() if g["group_id"].startswith(kprefix)]
    assert left == plain(nb, 'cleaned["groups left for the next run"]')   # only the killed member's share group
    assert all(g.endswith("job-workers") for g in left)
    assert nb.value("workers.stop_all()") == 0
