"""Plumbing for notebook 08, Redis Cluster half: which node holds a key, stream keys spread over the
shards with hash tags, writer processes with a fixed server-side cost per entry, per-node counters.

The lesson's commands (CLUSTER KEYSLOT, CLUSTER SHARDS, the XADD, the CROSSSLOT error) stay in the
notebook; this module turns replies into tables and runs the writer processes.
"""

from __future__ import annotations

import time

from . import clients


def cluster_client(startup_nodes: list, **kwargs):
    """A ``redis.cluster.RedisCluster`` client from ``[[host, port], ...]`` with timeouts."""
    from redis.cluster import ClusterNode, RedisCluster

    kwargs.setdefault("decode_responses", True)
    kwargs.setdefault("socket_timeout", 10)
    kwargs.setdefault("socket_connect_timeout", 2)
    return RedisCluster(startup_nodes=[ClusterNode(h, int(p)) for h, p in startup_nodes], **kwargs)


def shards(node_client) -> list[dict]:
    """``CLUSTER SHARDS`` as one row per node: port, role, health and the slot ranges it serves."""
    rows = []
    for shard in node_client.execute_command("CLUSTER SHARDS"):
        slots = shard["slots"]
        ranges = [f"{slots[i]}-{slots[i + 1]}" for i in range(0, len(slots), 2)]
        for node in shard["nodes"]:
            rows.append({"port": int(node["port"]), "role": node["role"], "health": node["health"],
                         "slots": ", ".join(ranges),
                         "slot count": sum(slots[i + 1] - slots[i] + 1 for i in range(0, len(slots), 2))})
    return sorted(rows, key=lambda row: row["port"])


def owner_port(node_client, slot: int) -> int:
    """The port of the master serving ``slot`` (from CLUSTER SHARDS)."""
    for shard in node_client.execute_command("CLUSTER SHARDS"):
        s = shard["slots"]
        if any(s[i] <= slot <= s[i + 1] for i in range(0, len(s), 2)):
            return next(int(n["port"]) for n in shard["nodes"] if n["role"] == "master")
    raise LookupError(f"no node serves slot {slot}")


def spread_keys(node_client, make_key, count: int) -> list[str]:
    """``count`` keys ``make_key(i)`` (i = 0, 1, 2 ...) whose slots belong to different masters, as far
    as there are masters: the first name found on each master, round-robin, so a per-key workload is
    spread over the shards (hash tags in ``make_key`` decide which part of a name is hashed)."""
    masters = sorted({row["port"] for row in shards(node_client) if row["role"] == "master"})
    by_port: dict[int, list[str]] = {p: [] for p in masters}
    i = 0
    while sum(len(v) for v in by_port.values()) < count * len(masters) and i < 10_000:
        key = make_key(i)
        by_port[owner_port(node_client, node_client.execute_command("CLUSTER KEYSLOT", key))].append(key)
        i += 1
        if all(len(v) >= count for v in by_port.values()):
            break
    picked = [by_port[p][j] for j in range(count) for p in masters if j < len(by_port[p])]
    return picked[:count]


def node_counters(rc) -> list[dict]:
    """Per master since the last reset: XADD calls, the server's busy time for them (XADD plus the
    modelled per-entry work), and the keys it holds."""
    rows = []
    for i, node in enumerate(rc.nodes):
        c = rc.node_client(i)
        if c.execute_command("ROLE")[0] != "master":
            continue
        stats = c.info("commandstats")
        busy = sum(stats.get(f"cmdstat_{cmd}", {}).get("usec", 0) for cmd in ("xadd", "debug"))
        rows.append({"port": node.port, "XADD calls": stats.get("cmdstat_xadd", {}).get("calls", 0),
                     "server busy (ms)": round(busy / 1000, 1), "keys": c.dbsize()})
    return rows


def reset_counters(rc) -> None:
    """CONFIG RESETSTAT on every node of the throwaway cluster (its command counters start at 0)."""
    for i in range(len(rc.nodes)):
        rc.node_client(i).config_resetstat()


def stream_writer(*, startup_nodes: list, keys: list[str], count: int, server_ms: float, writer: str,
                  redis_url: str, report: str) -> None:
    """A writer PROCESS: waits for ``<report>:go`` (on the course Redis), then XADDs ``count`` entries
    round-robin over ``keys`` (after reporting ``<writer>:ready``), each followed on the same node by ``DEBUG SLEEP server_ms`` (the node's
    time per entry: a single-threaded node does nothing else meanwhile), and records its start and
    end time in the hash ``<report>:times`` (``<writer>:start`` / ``<writer>:end``)."""
    r = clients.redis_client(redis_url)
    rc = cluster_client(startup_nodes)
    nodes = {key: rc.get_redis_connection(rc.get_node_from_key(key)) for key in keys}
    for node in set(nodes.values()):
        node.ping()                                          # connected before the clock starts
    r.hset(f"{report}:times", f"{writer}:ready", time.time())
    deadline = time.monotonic() + 90
    while not r.exists(f"{report}:go"):
        if time.monotonic() > deadline:
            return
        time.sleep(0.005)
    r.hset(f"{report}:times", f"{writer}:start", time.time())
    for n in range(count):
        key = keys[n % len(keys)]
        pipe = nodes[key].pipeline(transaction=False)       # one round trip to the key's node
        pipe.xadd(key, {"writer": writer, "n": n})
        pipe.execute_command("DEBUG", "SLEEP", server_ms / 1000)
        pipe.execute()
    r.hset(f"{report}:times", f"{writer}:end", time.time())


def writers_rate(r, report: str, writers: list[str], entries: int) -> dict:
    """Entries per second of a run: ``entries`` / (last end - first start) over ``writers``."""
    times = {k: float(v) for k, v in r.hgetall(f"{report}:times").items() if not k.endswith(":ready")}
    start = min(times[f"{w}:start"] for w in writers)
    end = max(times[f"{w}:end"] for w in writers)
    return {"entries": entries, "seconds": round(end - start, 3), "entries/s": round(entries / (end - start), 1)}


def stop_cluster(lab, name: str) -> int:
    """Stop the throwaway Redis Cluster ``name`` if it exists (found on disk, so this works after a
    kernel restart too) and delete its data. Returns how many of its nodes were running."""
    from .services.cluster import cluster_dir, find_clusters

    found = find_clusters(lab.home / "extra").get(cluster_dir(lab.home / "extra", "redis", name).name)
    if found is None:
        return 0
    running = sum(n.running for n in found.nodes)
    found.stop(remove_data=True)
    return running
