from itertools import pairwise


def find_gaps(seqs):
    """The sequence numbers missing between the first and the last received, ascending."""
    gaps = []
    for a, b in pairwise(sorted(set(seqs))):
        gaps.extend(range(a + 1, b))  # a jump from a to b means a+1 .. b-1 never arrived
    return gaps
