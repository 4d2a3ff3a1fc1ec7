def check_in(r, stream_key, learner):
    return r.xadd(stream_key, {"learner": learner})
