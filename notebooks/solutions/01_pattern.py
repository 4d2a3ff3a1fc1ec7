def subscribe_created_orders(p, prefix):
    """Make PubSub p receive exactly the prefix + 'orders:<region>:created' channels."""
    p.psubscribe(prefix + "orders:*:created")
