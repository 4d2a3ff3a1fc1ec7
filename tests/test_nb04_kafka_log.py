"""Notebook 04: keys -> partitions, order within partitions only, reading does not remove,
delete_records moves the log start exactly, the backlog's bytes on disk; both exercises; a clean re-run."""

import itertools
import random

import pytest
from conftest import rerun_all, run_notebook, solution


def assert_measured(m: dict, partitions: int = 4) -> None:
    """The counted outcomes of one run of the notebook."""
    produced = m["produced"]
    assert produced > 0

    # same key -> same partition, the one murmur2(key) % partitions predicts
    assert len(m["key_partitions"]) == 8
    assert {k: v for k, v in m["key_partitions"].items() if len(v) != 1} == {}
    assert {k: v[0] for k, v in m["key_partitions"].items()} == m["key_predicted"]

    # order: 0 inversions within every partition and per key, > 0 across partitions
    assert len(m["inversions_within"]) == partitions
    assert m["inversions_within"] == {str(p): 0 for p in range(partitions)}
    assert m["inversions_per_key"] == 0
    assert m["inversions_global"] > 0

    # reading does not remove: second read == first read == produced; a List pop does remove
    reads = m["reads"]
    assert reads["kafka_first"] == reads["kafka_second"] == reads["kafka_stored"] == produced
    assert reads["same_records"] is True
    assert (reads["list_first"], reads["list_second"], reads["list_stored"]) == (produced, 0, 0)

    # delete_records: log start == requested offset; nothing below it is readable; the rest is
    dr = m["delete_records"]
    assert set(dr["requested"]) == {str(p) for p in range(partitions)}
    assert any(v > 0 for v in dr["requested"].values())
    assert dr["log_start"] == dr["requested"]
    assert dr["read_below_requested"] == 0
    for p, req in dr["requested"].items():
        assert dr["read"][p] == dr["end"][p] - req
        if dr["read"][p]:
            assert dr["lowest_read"][p] == req
    assert dr["offset_zero"].startswith("OffsetOutOfRangeError")

    # the backlog: .log bytes on the broker's disk (local broker under test) and the Stream's RAM
    disk = m["disk"]
    assert disk["skipped"] is None
    assert disk["kafka_log_bytes"] > 0
    assert disk["kafka_log_bytes"] == disk["kafka_broker_reported"]
    assert disk["redis_stream_bytes"] > 0

    # the time-based retention demo ran within its bound (its timing is the broker's, not asserted)
    assert m["time_retention"]["waves"] >= 1

    # Kafka's own tools, run from the course's jars, agree with the admin API
    assert m["cli_offsets"] == {"ok": True, "match": True}
    assert m["cli_log_start"] == dr["log_start"]
    assert m["dump_log"]["ok"] and m["dump_log"]["batches"] >= 1 and m["dump_log"]["records"] >= 1


@pytest.mark.notebook
def test_nb04_log_partitions_order_retention_disk_exercises_rerun(lab, r, kafka_admin, ref_value):
    with run_notebook("04") as tb:
        assert_measured(ref_value(tb, "measured"))
        described = tb.cell_output_text("cli-describe")    # `!kafka-topics ... --describe` in a cell
        assert f"Topic: {tb.value('ORDERS')}" in described and "PartitionCount: 4" in described
        assert described.count("Leader: 1") == 4, described
        kafka_prefix, redis_prefix = tb.value("ns.kafka_prefix"), tb.value("ns.prefix")
        assert not [t for t in kafka_admin.list_topics() if t.startswith(kafka_prefix)]  # cleanup ran

        # exercise 1: the stub is "not attempted", a key per order passes, a key per status does not
        assert tb.value("check_key_for.status") == "not-attempted"
        tb.inject(solution("04_key_for"), pop=True)
        tb.execute_cell("check-key-for")
        assert tb.value("check_key_for.status") == "pass", tb.value("str(check_key_for)")
        tb.inject("def key_for(event):\n    return event['status'].encode()", pop=True)
        tb.execute_cell("check-key-for")
        assert tb.value("check_key_for.status") == "not-yet", tb.value("str(check_key_for)")

        # exercise 2: the stub is "not attempted", assign + seek passes, reading from the start does not
        assert tb.value("check_read_from.status") == "not-attempted"
        tb.inject(solution("04_read_from"), pop=True)
        tb.execute_cell("check-read-from")
        assert tb.value("check_read_from.status") == "pass", tb.value("str(check_read_from)")
        tb.inject("_right = read_from\n"
                  "def read_from(topic, partition, offset):\n    return _right(topic, partition, 0)", pop=True)
        tb.execute_cell("check-read-from")
        assert tb.value("check_read_from.status") == "not-yet", tb.value("str(check_read_from)")

        # cleanup removes the exercise topics too, and leaves no key of this run
        tb.execute_cell("cleanup")
        assert not [t for t in kafka_admin.list_topics() if t.startswith(kafka_prefix)]
        assert list(r.scan_iter(match=redis_prefix + "*")) == []

        # Run All a second time in the same kernel: a new namespace, the same counted outcomes
        rerun_all(tb)
        assert tb.value("ns.kafka_prefix") != kafka_prefix
        assert_measured(ref_value(tb, "measured"))
        assert tb.value("check_key_for.status") == "not-attempted"
        assert tb.value("check_read_from.status") == "not-attempted"
        second = tb.value("ns.kafka_prefix")
        assert not [t for t in kafka_admin.list_topics() if t.startswith(second)]
        assert list(r.scan_iter(match=tb.value("ns.prefix") + "*")) == []


def test_inversions_counts_every_out_of_order_pair():
    from helpers.kafka_log import inversions, max_inversions

    rng = random.Random(4)
    for n in (0, 1, 2, 7, 60):
        seq = [rng.randint(0, 20) for _ in range(n)]
        brute = sum(1 for i, j in itertools.combinations(range(n), 2) if seq[i] > seq[j])
        assert inversions(seq) == brute
    assert inversions(range(50)) == 0
    assert inversions(range(50, 0, -1)) == max_inversions(50)


def test_external_broker_disk_measurement_is_skipped_with_a_reason(monkeypatch):
    from helpers import kafka_log

    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka.example.invalid:9092")
    data_dir, why = kafka_log.local_data_dir()
    assert data_dir is None and "external broker" in why and "cannot measure" in why
