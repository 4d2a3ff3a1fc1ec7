def handle_payment(r, job, balance_key, processed_key):
    """Apply a payment once, however many times the queue delivers it."""
    if r.sadd(processed_key, job["id"]):      # 1 the first time this id is seen, 0 after
        r.incrby(balance_key, job["amount"])
