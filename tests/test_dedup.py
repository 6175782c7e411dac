"""Near-duplicate search by multi-index hashing, checked against brute force."""

from __future__ import annotations

import time

import imagehash
import numpy as np
import pytest

from framesift import dedup
from framesift.dedup import (
    Candidate,
    choose_representatives,
    cluster_labels,
    hex_to_words,
    near_duplicate_pairs,
)


def brute_pairs(words: np.ndarray, threshold: int) -> np.ndarray:
    """Reference: all pairs i < j within ``threshold``, by numpy all-pairs XOR + popcount."""
    n = len(words)
    dist = np.zeros((n, n), dtype=np.int64)
    for column in range(words.shape[1]):
        dist += np.bitwise_count(words[:, None, column] ^ words[None, :, column])
    i, j = np.nonzero(np.triu(dist <= threshold, k=1))
    return np.stack([i, j], axis=1).astype(np.int64)


def brute_labels(words: np.ndarray, threshold: int) -> np.ndarray:
    """Reference connected components by union-find over the brute-force pairs."""
    parent = list(range(len(words)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in brute_pairs(words, threshold).tolist():
        parent[root(i)] = root(j)
    first: dict[int, int] = {}
    return np.array([first.setdefault(root(i), len(first)) for i in range(len(words))])


def planted(n: int, n_words: int, threshold: int, seed: int = 0) -> np.ndarray:
    """Random hashes; 40% copy an earlier row with 0..threshold+2 flipped bits."""
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 2**64, size=(n, n_words), dtype=np.uint64)
    for row in rng.choice(np.arange(1, n), size=int(0.4 * n), replace=False):
        words[row] = words[rng.integers(row)]
        for bit in rng.choice(64 * n_words, size=rng.integers(threshold + 3), replace=False):
            words[row, bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return words


@pytest.mark.parametrize("n_words", [1, 4])
@pytest.mark.parametrize("threshold", [0, 3, 8, 10])
def test_pairs_equal_brute_force(n_words: int, threshold: int) -> None:
    words = planted(700, n_words, threshold, seed=threshold)
    expected = brute_pairs(words, threshold)
    assert len(expected) > 50
    assert np.array_equal(near_duplicate_pairs(words, threshold), expected)


@pytest.mark.parametrize(
    ("n_words", "threshold", "n_blocks"),
    [(1, 8, 3), (1, 8, 4), (1, 3, 2), (1, 10, 5), (1, 1, 1), (4, 8, 5), (4, 3, 1), (4, 10, 6)],
)
@pytest.mark.parametrize("direct", [True, False])
def test_probing_plans_equal_brute_force(
    monkeypatch: pytest.MonkeyPatch, n_words: int, threshold: int, n_blocks: int, direct: bool
) -> None:
    """Every plan (blocks with bit-flip probing, dense-table or binary-search lookups) is exact."""
    monkeypatch.setattr(dedup, "_use_direct", lambda width, n, radius: direct and width <= 22)
    words = planted(400, n_words, threshold, seed=n_blocks)
    got = near_duplicate_pairs(words, threshold, n_blocks=n_blocks)
    assert np.array_equal(got, brute_pairs(words, threshold))


def test_planner_uses_probing_for_large_inputs() -> None:
    positions = np.arange(64)
    small = dedup._plan_blocks(positions, 8, 1_000)
    large = dedup._plan_blocks(positions, 8, 1_000_000)
    assert [b.radius for b in small] == [0] * 9  # few hashes: exact-match blocks
    assert len(large) == 3 and all(b.radius == 2 for b in large)  # many: 3 blocks, 2 flips
    for blocks in (small, large):
        assert sum(b.radius + 1 for b in blocks) >= 9  # pigeonhole holds
        assert sorted(p for b in blocks for p in b.positions) == list(range(64))


def test_many_exactly_equal_hashes() -> None:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 2**64, size=1, dtype=np.uint64)
    words = rng.integers(0, 2**64, size=(600, 1), dtype=np.uint64)
    words[rng.choice(600, 300, replace=False), 0] = base[0]
    words[rng.choice(600, 100, replace=False), 0] = base[0] ^ np.uint64(0b101)
    for threshold in (0, 2, 8):
        pairs = near_duplicate_pairs(words, threshold)
        assert np.array_equal(pairs, brute_pairs(words, threshold))
        assert np.array_equal(cluster_labels(words, threshold), brute_labels(words, threshold))


def test_huge_identical_group_is_linear() -> None:
    words = np.full((300_000, 1), 0xDEADBEEF, dtype=np.uint64)
    words[-3:, 0] = [1, 0xDEADBEEE, 2**63]
    start = time.perf_counter()
    labels = cluster_labels(words, 1)
    assert time.perf_counter() - start < 5.0  # O(g^2) would be ~4.5e10 pairs
    assert labels[:-3].max() == 0 and labels[-3:].tolist() == [1, 0, 2]


@pytest.mark.parametrize("n_words", [1, 4])
def test_empty_and_single_inputs(n_words: int) -> None:
    for n in (0, 1):
        words = np.ones((n, n_words), dtype=np.uint64)
        assert near_duplicate_pairs(words, 5).shape == (0, 2)
        assert cluster_labels(words, 5).tolist() == [0] * n
    assert near_duplicate_pairs(np.ones((2, n_words), dtype=np.uint64), 0).tolist() == [[0, 1]]


def test_cluster_labels_are_transitive_and_numbered_by_first_appearance() -> None:
    a = 0x0F0F_0000_FFFF_1234
    b = a ^ 0b111  # 3 bits from a
    c = b ^ 0b111000  # 3 bits from b, 6 from a
    far = a ^ 0xFFFF_FFFF_0000_0000
    words = np.array([[far], [a], [c], [far ^ 1], [b]], dtype=np.uint64)
    assert cluster_labels(words, 3).tolist() == [0, 1, 1, 0, 1]
    assert cluster_labels(words, 2).tolist() == [0, 1, 2, 0, 3]


@pytest.mark.parametrize("n_words", [1, 4])
def test_cluster_labels_equal_union_find(n_words: int) -> None:
    words = planted(500, n_words, 8, seed=11)
    assert np.array_equal(cluster_labels(words, 8), brute_labels(words, 8))


def test_hex_to_words_layout_and_padding() -> None:
    words = hex_to_words(["ff", "0000000000000001", "8000000000000000"], 64)
    assert words.dtype == np.uint64 and words.shape == (3, 1)
    assert words[:, 0].tolist() == [255, 1, 2**63]
    wide = hex_to_words(["1" + "0" * 63, "abc"], 256)
    assert wide.shape == (2, 4)
    assert wide[0].tolist() == [2**60, 0, 0, 0]  # word 0 holds the most significant bits
    assert wide[1].tolist() == [0, 0, 0, 0xABC]
    assert hex_to_words([], 64).shape == (0, 1)
    assert hex_to_words(["1ffffff"], 25)[0, 0] == 2**25 - 1


def test_hex_to_words_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="hex digits"):
        hex_to_words(["0" * 17], 64)
    with pytest.raises(ValueError, match="hash 1 .* not a hex string"):
        hex_to_words(["ab", "xyz"], 64)
    with pytest.raises(ValueError, match="does not fit in 25 bits"):
        hex_to_words(["2000000"], 25)


@pytest.mark.parametrize("hash_size", [8, 16, 5])
def test_distances_match_imagehash(hash_size: int) -> None:
    rng = np.random.default_rng(hash_size)
    hashes = [imagehash.ImageHash(rng.random((hash_size, hash_size)) < 0.5) for _ in range(40)]
    words = hex_to_words([str(h) for h in hashes], hash_size * hash_size)
    threshold = hash_size * hash_size // 2 - 2
    expected = [
        [i, j] for i in range(40) for j in range(i + 1, 40) if hashes[i] - hashes[j] <= threshold
    ]
    assert near_duplicate_pairs(words, threshold).tolist() == expected


def test_popcount_lookup_table_matches_numpy() -> None:
    values = np.random.default_rng(3).integers(0, 2**64, size=(50, 3), dtype=np.uint64)
    values[0, 0] = 2**64 - 1
    expected = np.array([[bin(int(v)).count("1") for v in row] for row in values])
    assert np.array_equal(dedup._popcount_lut(values), expected)
    assert np.array_equal(dedup._popcount(values), expected)


def test_hashes_within_threshold_everywhere_form_one_cluster() -> None:
    words = np.array([[0b000], [0b001], [0b110], [0b110], [0b011]], dtype=np.uint64)
    assert cluster_labels(words, 3).tolist() == [0] * 5
    assert len(near_duplicate_pairs(words, 3)) == 10


def test_invalid_arguments() -> None:
    words = np.zeros((3, 1), dtype=np.uint64)
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_pairs(words, -1)
    with pytest.raises(ValueError, match="dtype"):
        cluster_labels(np.zeros((3, 1), dtype=np.float64), 2)
    with pytest.raises(ValueError, match="n_blocks"):
        near_duplicate_pairs(planted(10, 1, 3), 3, n_blocks=5)


def cands(*specs: tuple[float, float, tuple]) -> list[Candidate]:
    return [Candidate(f"k{i}", s, c, o) for i, (s, c, o) in enumerate(specs)]


def test_choose_representatives_sharpest() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2, 2])
    candidates = cands(
        (5.0, 0.1, (0, 30)),
        (9.0, 0.2, (0, 20)),  # sharpest of cluster 0
        (1.0, 0.9, (0, 10)),
        (7.0, 0.5, (1, 5)),
        (7.0, 0.6, (1, 9)),  # same sharpness, higher confidence
        (3.0, 0.4, (2, 9)),
        (3.0, 0.4, (2, 1)),  # full tie but earlier order
    )
    assert choose_representatives(labels, candidates) == {0: 1, 1: 4, 2: 6}


def test_choose_representatives_confident() -> None:
    labels = np.array([4, 4, 4, 7, 7])
    candidates = cands(
        (9.0, 0.5, (0, 0)),
        (1.0, 0.8, (0, 5)),
        (2.0, 0.8, (0, 9)),  # same confidence, sharper
        (1.0, 0.3, (1, 7)),
        (1.0, 0.3, (1, 2)),  # full tie, earlier
    )
    assert choose_representatives(labels, candidates, prefer="confident") == {4: 2, 7: 4}


def test_choose_representatives_earliest() -> None:
    labels = np.array([0, 1, 0, 1, 1])
    candidates = cands(
        (9.0, 0.9, (1, 100)),
        (1.0, 0.1, (0, 500)),
        (0.1, 0.1, (0, 900)),  # earliest video wins over later video
        (5.0, 0.5, (0, 200)),
        (5.0, 0.5, (0, 200)),  # exact tie: lower index
    )
    assert choose_representatives(labels, candidates, prefer="earliest") == {0: 2, 1: 3}


def test_choose_representatives_errors() -> None:
    with pytest.raises(ValueError, match="sharpest, confident, earliest"):
        choose_representatives(np.array([0]), cands((1.0, 1.0, (0,))), prefer="largest")
    with pytest.raises(ValueError, match="2 labels but 1 candidates"):
        choose_representatives(np.array([0, 0]), cands((1.0, 1.0, (0,))))
    assert choose_representatives(np.array([], dtype=np.int64), []) == {}
