import time


def make_durable(r):
    """Append-only file on, fsync before every acknowledgement; wait until Redis has rewritten the AOF."""
    r.config_set("appendonly", "yes")       # starts a background rewrite that writes the current dataset
    r.config_set("appendfsync", "always")   # fsync before answering each write: survives a power cut too
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:      # until the rewrite is done the AOF is not complete yet
        info = r.info("persistence")
        if info["aof_enabled"] == 1 and not info["aof_rewrite_in_progress"]:
            return
        time.sleep(0.05)
    raise TimeoutError("the AOF rewrite did not finish within 30 s")
