"""Dataset caps and negatives quota (framesift.dataset.balance)."""

from __future__ import annotations

import pytest

from framesift.dataset.balance import cap_images, negatives_quota, spread_over_videos

SQ, CI = frozenset({"square"}), frozenset({"circle"})


def test_caps_per_video_keep_the_preferred_frames() -> None:
    video_of = ["long"] * 6 + ["short"]
    classes = [SQ] * 7
    order = [5, 6, 4, 3, 2, 1, 0]  # preference order (e.g. sharpest first)
    assert cap_images(order, video_of, classes, max_per_video=2) == [5, 6, 4]
    assert cap_images(order, video_of, classes) == order  # no cap


def test_caps_per_class_count_every_class_an_image_shows() -> None:
    video_of = ["a", "b", "c", "d"]
    classes = [SQ | CI, SQ, CI, CI]
    assert cap_images([0, 1, 2, 3], video_of, classes, max_per_class=1) == [0]
    assert cap_images([1, 0, 2, 3], video_of, classes, max_per_class=1) == [1, 2]
    negatives = [SQ, CI, frozenset(), frozenset()]  # images without a box are never capped
    assert cap_images([0, 1, 2, 3], video_of, negatives, max_per_class=1) == [0, 1, 2, 3]


def test_negatives_quota_is_a_fraction_of_the_final_dataset() -> None:
    assert negatives_quota(90, 0.1) == 10  # 10 of 100
    assert negatives_quota(0, 0.1) == 0 and negatives_quota(90, 0.0) == 0
    with pytest.raises(ValueError):
        negatives_quota(10, 1.0)


def test_negatives_spread_over_videos() -> None:
    video_of = ["a", "a", "a", "b", "c"]
    assert spread_over_videos([0, 1, 2, 3, 4], video_of, 3) == [0, 3, 4]
    assert spread_over_videos([0, 1, 2, 3, 4], video_of, 10) == [0, 3, 4, 1, 2]
