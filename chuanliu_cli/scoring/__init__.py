"""From metric rows to the reward list: normalize, score, gate, tier, rank, allocate; explain and compare."""
