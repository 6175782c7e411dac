"""Dataset balance: caps per video and per class, and how many negatives to add.

Pure functions over candidate indices given in preference order (the same order dedup uses to
pick representatives), so a cap keeps the frames dedup would have preferred.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")
Lookup = Sequence[T] | Mapping[int, T]  # by candidate index


def cap_images(
    order: Sequence[int],
    video_of: Lookup[str],
    classes_of: Lookup[frozenset[str]],
    max_per_video: int = 0,
    max_per_class: int = 0,
) -> list[int]:
    """The indices of ``order`` kept under the caps, in preference order (0 = no cap).

    An image counts once for its video and once for every class it shows; it is kept only while
    its video and all of its classes are under their caps.
    """
    per_video: Counter[str] = Counter()
    per_class: Counter[str] = Counter()
    kept = []
    for index in order:
        video, classes = video_of[index], classes_of[index]
        if max_per_video and per_video[video] >= max_per_video:
            continue
        if max_per_class and any(per_class[c] >= max_per_class for c in classes):
            continue
        per_video[video] += 1
        per_class.update(classes)
        kept.append(index)
    return kept


def negatives_quota(n_positive: int, fraction: float) -> int:
    """Negatives to add so that they make up ``fraction`` of the dataset's images."""
    if fraction <= 0 or n_positive == 0:
        return 0
    if fraction >= 1:
        raise ValueError("dataset.negatives must be below 1")
    return math.floor(n_positive * fraction / (1 - fraction) + 0.5)


def spread_over_videos(order: Sequence[int], video_of: Lookup[str], count: int) -> list[int]:
    """Up to ``count`` indices taken round-robin over videos, each video in preference order,
    so that no single video supplies all the negatives."""
    queues: dict[str, list[int]] = {}
    for index in order:
        queues.setdefault(video_of[index], []).append(index)
    picked: list[int] = []
    position = 0
    while len(picked) < count and any(position < len(q) for q in queues.values()):
        for queue in queues.values():
            if position < len(queue) and len(picked) < count:
                picked.append(queue[position])
        position += 1
    return picked
