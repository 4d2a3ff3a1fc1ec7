def predict_moved(keys, old, new):
    # a key moves when murmur2(key) % old and murmur2(key) % new differ
    return {key for key in keys if scaling.partition_for(key, old) != scaling.partition_for(key, new)}
