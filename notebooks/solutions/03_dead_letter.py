def dead_letter(r, stream, group, dlq, max_deliveries):
    """Move every pending entry delivered >= max_deliveries times to `dlq`, XACK it; return the ids."""
    moved = []
    start = "-"
    while True:
        page = r.xpending_range(stream, group, start, "+", 100)      # extended form: counts, no claim
        for p in page:
            if p["times_delivered"] >= max_deliveries:
                found = r.xrange(stream, p["message_id"], p["message_id"])
                fields = found[0][1] if found else {}
                r.xadd(dlq, {**fields, "original_id": p["message_id"],
                             "deliveries": p["times_delivered"], "consumer": p["consumer"]})
                r.xack(stream, group, p["message_id"])
                moved.append(p["message_id"])
        if len(page) < 100:
            return moved
        start = "(" + page[-1]["message_id"]                         # exclusive: the next page
