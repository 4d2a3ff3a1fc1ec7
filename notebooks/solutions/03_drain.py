def drain_pending(r, stream, group, consumer, min_idle_ms):
    """Claim every entry idle >= min_idle_ms for `consumer`, process it, XACK it; return the ids."""
    processed = []
    cursor = "0-0"
    while True:
        cursor, entries, _deleted = r.xautoclaim(stream, group, consumer, min_idle_ms, cursor, count=50)
        for entry_id, fields in entries:
            processed.append(entry_id)          # "process" the entry (a real handler would go here)
            r.xack(stream, group, entry_id)
        if cursor == "0-0":                     # the scan of the pending list came back to the start
            return processed
