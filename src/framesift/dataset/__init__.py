"""The aggregate: cross-video dedup, labels, caps and negatives, the dataset writers."""
