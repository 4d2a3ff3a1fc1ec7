"""Notebook 04's deciding functions and measurements, on their own: the C13 verdict (an ordered read is
inconclusive, never a refutation), the C20 verdict, the "inconclusive" verdict in the results file,
librdkafka's send with a deadline, page-cache residency (checked against util-linux's fincore), the
log-start moves of a retention run; and the notebook's prose: no result stated in Markdown before it
is measured, no emoji."""

import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from helpers import footprint, kafka_disk, kafka_log, results

NB04 = next((Path(__file__).resolve().parent.parent / "notebooks").glob("04_*.ipynb"))


@pytest.mark.parametrize("within, across, verdict", [
    (0, 0, "inconclusive"),      # ordered across partitions in one run: no promise was tested
    (0, 97, "confirmed"),        # ordered inside every partition, interleaved across them
    (3, 0, "refuted"),           # a partition out of order contradicts the claim
    (3, 97, "refuted"),
])
def test_order_verdict_zero_inversions_across_partitions_is_inconclusive(within, across, verdict):
    assert kafka_log.order_verdict(within, across) == verdict


@pytest.mark.parametrize("redis, broker, payload, verdict", [
    (10_000_000, 100_000, 9_000_000, "confirmed"),
    (10_000_000, 0, 9_000_000, "confirmed"),
    (10_000_000, -2_000_000, 9_000_000, "confirmed"),     # the JVM gave pages back
    (10_000_000, 3_000_000, 9_000_000, "inconclusive"),   # grew, but less than Redis
    (3_000_000, 100_000, 9_000_000, "inconclusive"),      # Redis did not grow with the payload
    (10_000_000, 10_000_000, 9_000_000, "refuted"),       # the broker grew as much as Redis
    (10_000_000, None, 9_000_000, "inconclusive"),        # the broker could not be measured
])
def test_memory_verdict(redis, broker, payload, verdict):
    assert footprint.memory_verdict(redis, broker, payload) == verdict


def test_results_accept_an_inconclusive_verdict_and_nothing_made_up(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_RESULTS", str(tmp_path / "results.jsonl"))
    results.record("C13", "inversions_within_partitions", 0, "pairs", notebook="04", verdict="inconclusive")
    assert results.latest("C13", notebook="04")["verdict"] == "inconclusive"
    with pytest.raises(ValueError, match="inconclusive"):
        results.record("C13", "x", 0, "pairs", notebook="04", verdict="probably")


def test_rd_send_to_a_dead_broker_fails_with_one_sentence_within_its_deadline():
    from confluent_kafka import Producer

    # a port held (bound, never listening) by this test: nothing can listen there while it runs, not
    # even a broker another test starts in parallel (a free_port() could be taken in the meantime)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        producer = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "message.timeout.ms": 1500,
                             "log_level": 0})
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match=r"delivered 0 of 2 records .* is Kafka at .* up\?") as err:
            kafka_log.rd_send(producer, "streamslab.pytest.nb04.nowhere", [b"a", b"b"], b"v", timeout=3)
        assert time.monotonic() - t0 < 6
    assert "\n" not in str(err.value)


def test_crc32_and_murmur2_partitions_are_the_documented_formulas():
    # librdkafka consistent(_random): rd_crc32(key) % n; Java/kafka-python: toPositive(murmur2(key)) % n
    for n in (4, 7, 12):  # 0xCBF43926: the published CRC-32 (IEEE) check value of b"123456789"
        assert kafka_log.crc32_partition(b"123456789", n) == 0xCBF43926 % n
    disagree = sum(kafka_log.crc32_partition(k, 4) != kafka_log.predicted_partition(k, 4)
                   for k in (f"user-{i}".encode() for i in range(400)))
    assert 200 < disagree < 400  # two unrelated hashes agree about 1 time in 4


@pytest.mark.skipif(shutil.which("fincore") is None, reason="util-linux's fincore is not installed")
def test_page_cache_bytes_match_fincore(tmp_path, lab):
    data = tmp_path / "written.bin"
    data.write_bytes(b"x" * (3 * 2**20 + 123))      # just written: its pages are in the page cache
    # only files this test owns: the shared broker's segments are deleted and appended to by parallel
    # tests between the two counts (fincore failed on a segment deleted meanwhile)
    copies = []
    for i, segment in enumerate(sorted(lab.kafka.data_dir.glob("*/*.log"))[:5]):
        copy = tmp_path / f"segment-{i}.log"
        try:
            copy.write_bytes(segment.read_bytes())
        except FileNotFoundError:
            continue
        copies.append(copy)
    files = [data, *copies]

    def fincore(paths):
        out = subprocess.run(["fincore", "--bytes", "--raw", "--noheadings", "-o", "RES", *map(str, paths)],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return sum(int(x) for x in out.split())

    ours = footprint.page_cache_bytes(files)
    assert ours == fincore(files)
    assert footprint.page_cache_bytes([data]) >= 3 * 2**20
    assert footprint.page_cache_bytes([tmp_path / "missing.log"]) == 0


def test_log_start_moves_flag_segment_bases():
    rows = [
        {"seconds": 0.0, "partition": 0, "log-start offset": 0, "segment bases": [0, 60]},
        {"seconds": 0.5, "partition": 0, "log-start offset": 60, "segment bases": [60, 120]},
        {"seconds": 1.0, "partition": 0, "log-start offset": 90, "segment bases": [60, 120]},
        {"seconds": 1.0, "partition": 1, "log-start offset": 0, "segment bases": []},
        {"seconds": 1.5, "partition": 1, "log-start offset": 40, "segment bases": []},
    ]
    moves = kafka_disk.log_start_moves(rows)
    assert [(m["partition"], m["from"], m["to"], m["at a segment base"]) for m in moves] == [
        (0, 0, 60, True), (0, 60, 90, False), (1, 0, 40, None)]


def test_broker_memory_of_an_external_broker_is_skipped_with_a_reason(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "kafka.example.invalid:9092")
    process, why = footprint.broker_process()
    assert process is None and "external broker" in why and "cannot read its memory" in why


def _cells(kind: str) -> list[str]:
    nb = json.loads(NB04.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


def test_nb04_markdown_states_no_result_before_it_is_measured():
    """Sentences about what a run showed live in f-strings built from `measured`, not in Markdown."""
    stated = ["same order", "Every customer sits", "Inside each partition the count is", "Both consumers read",
              "the consumer refuses to guess and raises", "landed **exactly**", "log-start lines follow",
              "costs about the same"]
    markdown = "\n".join(_cells("markdown"))
    assert [s for s in stated if s in markdown] == []


def test_nb04_has_no_emoji():
    emoji = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]")
    found = [m.group() for text in _cells("markdown") + _cells("code") for m in emoji.finditer(text)]
    assert found == []
