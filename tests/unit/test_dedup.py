"""Near-duplicate search (multi-index hashing) and greedy cover, checked by brute force."""

from __future__ import annotations

import time
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw

from framesift.dataset.build import (
    Pool,
    VideoFrames,
    candidates_of,
    deduplicate,
    pool_words,
    write_clusters,
)
from framesift.hashing import dedup
from framesift.hashing.dedup import (
    Candidate,
    greedy_cover,
    hex_to_words,
    near_duplicate_pairs,
    preference_order,
)
from framesift.hashing.tables import FrameHash


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


def rank_key(candidate: Candidate, prefer: str) -> tuple:
    """Reference sort key of :func:`preference_order`: the smallest is the most preferred."""
    if prefer == "sharpest":
        return (-candidate.sharpness, -candidate.confidence, candidate.order)
    if prefer == "confident":
        return (-candidate.confidence, -candidate.sharpness, candidate.order)
    return (candidate.order,)


def assign(
    words: np.ndarray, threshold: int, candidates: list[Candidate], prefer: str = "sharpest"
) -> dedup.Assignment:
    """The aggregate's dedup: the greedy cover walked in ``prefer`` order of ``candidates``."""
    return greedy_cover(words, threshold, preference_order(candidates, prefer))


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
        result = greedy_cover(words, threshold)
        assert np.array_equal(result.representative, brute_cover(words, threshold, range(600)))


@pytest.mark.parametrize("n_words", [1, 4])
def test_empty_and_single_inputs(n_words: int) -> None:
    for n in (0, 1):
        words = np.ones((n, n_words), dtype=np.uint64)
        assert near_duplicate_pairs(words, 5).shape == (0, 2)
    assert near_duplicate_pairs(np.ones((2, n_words), dtype=np.uint64), 0).tolist() == [[0, 1]]


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


def test_hashes_within_threshold_everywhere_are_all_pairs() -> None:
    words = np.array([[0b000], [0b001], [0b110], [0b110], [0b011]], dtype=np.uint64)
    assert len(near_duplicate_pairs(words, 3)) == 10


def test_invalid_arguments() -> None:
    words = np.zeros((3, 1), dtype=np.uint64)
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_pairs(words, -1)
    with pytest.raises(ValueError, match="dtype"):
        greedy_cover(np.zeros((3, 1), dtype=np.float64), 2)
    with pytest.raises(ValueError, match="n_blocks"):
        near_duplicate_pairs(planted(10, 1, 3), 3, n_blocks=5)


def cands(*specs: tuple[float, float, tuple]) -> list[Candidate]:
    return [Candidate(s, c, o) for s, c, o in specs]


def distance_matrix(words: np.ndarray) -> np.ndarray:
    """All-pairs Hamming distances (brute force)."""
    dist = np.zeros((len(words), len(words)), dtype=np.int16)
    for column in range(words.shape[1]):
        dist += np.bitwise_count(words[:, None, column] ^ words[None, :, column])
    return dist


def brute_cover(words: np.ndarray, threshold: int, order: list[int]) -> np.ndarray:
    """Reference greedy cover: the literal walk in ``order`` over the all-pairs distances."""
    near = distance_matrix(words) <= threshold
    rep = np.full(len(words), -1)
    for i in order:
        if rep[i] < 0:
            rep[near[i] & (rep < 0)] = i
    return rep


def check_cover(words: np.ndarray, threshold: int, result: dedup.Assignment) -> None:
    """Properties every greedy cover must have, checked by brute force."""
    n = len(words)
    dist = distance_matrix(words)
    rows = np.arange(n)
    rep = result.representative
    assert np.array_equal(rep[rep], rep)  # representatives represent themselves
    assert np.array_equal(result.distance, dist[rows, rep])
    assert result.distance.max(initial=0) <= threshold  # every dropped row is near its rep
    kept = result.kept
    apart = dist[np.ix_(kept, kept)] + (threshold + 1) * np.eye(len(kept), dtype=np.int16)
    assert apart.min(initial=threshold + 1) > threshold  # representatives are pairwise far
    _, first = np.unique(result.cluster, return_index=True)
    assert np.array_equal(result.cluster[np.sort(first)], np.arange(len(first)))
    assert len(first) == len(kept)
    assert result.representatives() == {int(result.cluster[k]): int(k) for k in kept}


# --------------------------------------------------------------------------- slow camera pan

PAN_THRESHOLD = 8


@pytest.fixture(scope="module")
def pan_hashes() -> list[imagehash.ImageHash]:
    """phash of 640x360 windows sliding 4 px a step over a 2000x360 picture (a slow pan)."""
    rng = np.random.default_rng(7)
    width, height = 2000, 360
    coarse = Image.fromarray((rng.random((9, 40)) * 255).astype(np.float32), mode="F")
    smooth = np.asarray(coarse.resize((width, height), Image.BICUBIC))
    gradient = np.linspace(0, 60, width)[None, :]
    picture = np.clip(0.7 * smooth + gradient, 0, 255).astype(np.uint8)
    image = Image.fromarray(picture, mode="L").convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x, y, r = int(rng.integers(width)), int(rng.integers(height)), int(rng.integers(15, 60))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r, x + r, y + r), fill=color)
    return [
        imagehash.phash(image.crop((x, 0, x + 640, height))) for x in range(0, width - 640 + 1, 4)
    ]


@pytest.mark.parametrize("prefer", ["earliest", "sharpest"])
def test_slow_pan_keeps_frames_near_every_dropped_frame(
    pan_hashes: list[imagehash.ImageHash], prefer: str
) -> None:
    hashes, t = pan_hashes, PAN_THRESHOLD
    n = len(hashes)
    steps = [hashes[i] - hashes[i + 1] for i in range(n - 1)]
    assert max(steps) <= t < hashes[0] - hashes[-1]  # a chain whose ends are far apart
    words = hex_to_words([str(h) for h in hashes], 64)
    rng = np.random.default_rng(1)
    candidates = [Candidate(rng.random(), rng.random(), (0, 40 * i)) for i in range(n)]

    result = assign(words, t, candidates, prefer)
    kept = result.kept.tolist()

    # what connected components do: one chain, one kept frame, far frames dropped
    labels = brute_labels(words, t)
    walk = sorted(range(n), key=lambda i: (rank_key(candidates[i], prefer), i))
    component_rep = {}
    for i in walk:
        component_rep.setdefault(int(labels[i]), i)
    worst = max(hashes[i] - hashes[component_rep[int(labels[i])]] for i in range(n))
    print(f"{prefer}: {n} frames, kept {len(kept)}, connected components kept {len(component_rep)}")
    assert len(component_rep) < len(kept) and worst > t

    assert len(kept) > 10
    for i in range(n):
        rep = int(result.representative[i])
        assert rep in kept
        assert hashes[i] - hashes[rep] == result.distance[i] <= t
    for a in range(len(kept)):
        for b in range(a + 1, len(kept)):
            assert hashes[kept[a]] - hashes[kept[b]] > t
    assert np.array_equal(result.representative, brute_cover(words, t, walk))


# --------------------------------------------------------------------------- greedy cover


@pytest.mark.parametrize("n_words", [1, 4])
@pytest.mark.parametrize("threshold", [0, 3, 8])
@pytest.mark.parametrize("min_progress", [None, 0.0, 2.0])  # default, rounds only, loop early
def test_greedy_cover_equals_sequential_walk(
    monkeypatch: pytest.MonkeyPatch, n_words: int, threshold: int, min_progress: float | None
) -> None:
    if min_progress is not None:
        monkeypatch.setattr(dedup, "_MIN_PROGRESS", min_progress)
    rng = np.random.default_rng(100 * n_words + threshold)
    words = planted(500, n_words, threshold, seed=threshold + 1)
    words[rng.choice(500, 60)] = words[rng.choice(500, 60)]  # exact copies
    for order in (np.arange(500), rng.permutation(500)):
        result = greedy_cover(words, threshold, order)
        assert np.array_equal(result.representative, brute_cover(words, threshold, order))
        check_cover(words, threshold, result)
        again = greedy_cover(words.copy(), threshold, order.copy())  # deterministic
        for field in ("representative", "distance", "cluster"):
            assert np.array_equal(getattr(result, field), getattr(again, field))
    assert len(result.kept) < 500


@pytest.mark.parametrize("prefer", ["sharpest", "confident", "earliest"])
def test_cover_in_preference_order_equals_walk_in_rank_order(prefer: str) -> None:
    rng = np.random.default_rng(8)
    words = planted(400, 1, 8, seed=21)
    candidates = cands(
        *[
            (float(rng.integers(3)), float(rng.integers(3)), (int(rng.integers(3)), int(t)))
            for t in rng.integers(0, 5, 400)
        ]
    )
    walk = sorted(range(400), key=lambda i: (rank_key(candidates[i], prefer), i))
    result = assign(words, 8, candidates, prefer)
    assert np.array_equal(result.representative, brute_cover(words, 8, walk))
    check_cover(words, 8, result)


def test_chain_finishes_in_sequential_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long chain walked along its length leaves the vectorised rounds for the plain loop."""
    rng = np.random.default_rng(4)
    steps = np.uint64(1) << rng.integers(0, 64, 2000).astype(np.uint64)
    words = np.bitwise_xor.accumulate(steps).reshape(-1, 1)  # each hash 1 bit from the last
    walks = []
    real_walk = dedup._walk
    monkeypatch.setattr(dedup, "_walk", lambda *args: (walks.append(1), real_walk(*args)))
    result = greedy_cover(words, 4)
    assert walks
    assert np.array_equal(result.representative, brute_cover(words, 4, list(range(2000))))
    check_cover(words, 4, result)
    assert brute_labels(words, 4).max() == 0 and len(result.kept) > 50


def test_greedy_cover_huge_identical_group_is_linear() -> None:
    words = np.full((300_000, 1), 0xDEADBEEF, dtype=np.uint64)
    words[-3:, 0] = [1, 0xDEADBEEE, 2**63]
    start = time.perf_counter()
    result = greedy_cover(words, 1)
    assert time.perf_counter() - start < 5.0  # O(g^2) would be ~4.5e10 pairs
    n = len(words)
    assert result.kept.tolist() == [0, n - 3, n - 1]
    assert result.representative[-2] == 0 and result.distance[-2] == 1
    assert result.cluster[-3:].tolist() == [1, 0, 2] and result.distance[:-3].max() == 0


def test_greedy_cover_everything_within_threshold() -> None:
    words = np.array([[0b000], [0b001], [0b110], [0b110], [0b011]], dtype=np.uint64)
    result = greedy_cover(words, 3, np.array([3, 0, 1, 2, 4]))
    assert result.representative.tolist() == [3] * 5
    assert result.distance.tolist() == [2, 3, 0, 0, 2]
    assert result.cluster.tolist() == [0] * 5


@pytest.mark.parametrize("n_words", [1, 4])
def test_greedy_cover_empty_and_single(n_words: int) -> None:
    for n in (0, 1):
        result = greedy_cover(np.ones((n, n_words), dtype=np.uint64), 5)
        assert result.representative.tolist() == result.cluster.tolist() == [0] * n
        assert result.distance.tolist() == [0] * n
    assert assign(np.zeros((0, 1), dtype=np.uint64), 3, []).representatives() == {}


# --------------------------------------------------------------------------- preference


def grouped_words(labels: list[int]) -> np.ndarray:
    """One random base hash per label; members flip one distinct low bit (pairwise <= 2 bits)."""
    rng = np.random.default_rng(9)
    bases = rng.integers(0, 2**64, size=max(labels) + 1, dtype=np.uint64)
    flips = np.uint64(1) << np.arange(len(labels), dtype=np.uint64)
    return (bases[labels] ^ flips).reshape(-1, 1)


def test_representatives_sharpest() -> None:
    labels = [0, 0, 0, 1, 1, 2, 2]
    candidates = cands(
        (5.0, 0.1, (0, 30)),
        (9.0, 0.2, (0, 20)),  # sharpest of cluster 0
        (1.0, 0.9, (0, 10)),
        (7.0, 0.5, (1, 5)),
        (7.0, 0.6, (1, 9)),  # same sharpness, higher confidence
        (3.0, 0.4, (2, 9)),
        (3.0, 0.4, (2, 1)),  # full tie but earlier order
    )
    result = assign(grouped_words(labels), 2, candidates)
    assert result.representatives() == {0: 1, 1: 4, 2: 6}
    assert result.representative.tolist() == [1, 1, 1, 4, 4, 6, 6]
    assert result.cluster.tolist() == labels
    assert result.distance.tolist() == [2, 0, 2, 2, 0, 2, 0]


def test_representatives_confident() -> None:
    candidates = cands(
        (9.0, 0.5, (0, 0)),
        (1.0, 0.8, (0, 5)),
        (2.0, 0.8, (0, 9)),  # same confidence, sharper
        (1.0, 0.3, (1, 7)),
        (1.0, 0.3, (1, 2)),  # full tie, earlier
    )
    result = assign(grouped_words([4, 4, 4, 7, 7]), 2, candidates, "confident")
    assert result.representatives() == {0: 2, 1: 4}
    assert result.cluster.tolist() == [0, 0, 0, 1, 1]


def test_representatives_earliest() -> None:
    candidates = cands(
        (9.0, 0.9, (1, 100)),
        (1.0, 0.1, (0, 500)),
        (0.1, 0.1, (0, 900)),  # earliest video wins over later video
        (5.0, 0.5, (0, 200)),
        (5.0, 0.5, (0, 200)),  # exact tie: lower index
    )
    result = assign(grouped_words([0, 1, 0, 1, 1]), 2, candidates, "earliest")
    assert result.representatives() == {0: 2, 1: 3}
    assert result.representative.tolist() == [2, 3, 2, 3, 3]


@pytest.mark.parametrize("prefer", ["sharpest", "confident", "earliest"])
@pytest.mark.parametrize("kind", ["numeric", "text", "ragged"])
def test_preference_order_matches_rank_key(prefer: str, kind: str) -> None:
    rng = np.random.default_rng(len(kind))
    specs = []
    for _ in range(300):
        video, ms = int(rng.integers(3)), int(rng.integers(4))
        order = {"numeric": (video, ms), "text": (f"v{video}", ms), "ragged": (video,) * (ms % 3)}
        specs.append((float(rng.integers(3)), float(rng.integers(3)), order[kind]))
    candidates = cands(*specs)
    expected = sorted(range(300), key=lambda i: (rank_key(candidates[i], prefer), i))
    assert preference_order(candidates, prefer).tolist() == expected


def test_assignment_errors() -> None:
    words = np.zeros((1, 1), dtype=np.uint64)
    with pytest.raises(ValueError, match="sharpest, confident, earliest"):
        assign(words, 2, cands((1.0, 1.0, (0,))), prefer="largest")
    with pytest.raises(ValueError, match="permutation of 0..1"):
        assign(np.zeros((2, 1), dtype=np.uint64), 2, cands((1.0, 1.0, (0,))))
    with pytest.raises(ValueError, match="permutation"):
        greedy_cover(np.zeros((3, 1), dtype=np.uint64), 2, np.array([0, 0, 2]))
    with pytest.raises(ValueError, match="threshold"):
        greedy_cover(words, -1)


# --------------------------------------------------------------------------- aggregate


def test_aggregate_writes_distance_to_representative(tmp_path: Path) -> None:
    base = 0x0123_4567_89AB_CDEF
    chain = [base, base ^ 0b111, base ^ 0b111111]  # 3 bits apart each, 6 end to end
    specs = [  # (video, file, ms, hash, sharpness)
        (0, "a.jpg", 0, chain[0], 1.0),
        (0, "b.jpg", 500, chain[1], 1.0),
        (0, "c.jpg", 1000, chain[2], 1.0),
        (1, "d.jpg", 0, base, 5.0),  # exact copy, sharpest
        (1, "e.jpg", 500, ~base & (2**64 - 1), 1.0),  # far from everything
    ]
    pool = Pool()
    for video, name, ms, value, sharp in specs:
        pool.video_index.append(video)
        pool.records.append(FrameHash(name, ms, f"{value:016x}", sharp, 0.5, ""))
    videos = [
        VideoFrames(vid, "", 0, 0, [], {}, {}, tmp_path, ("phash", 8)) for vid in ("va", "vb")
    ]
    order = preference_order(candidates_of(pool), "sharpest")
    labels, reps, distance = deduplicate(pool_words(pool, 8), order, 4)
    assert sorted(reps.values()) == [2, 3, 4]  # components would keep 2 frames
    path = tmp_path / "clusters.tsv"
    write_clusters(path, videos, pool, labels, reps, distance)
    assert path.read_text().splitlines() == [
        "cluster\tvideo_id\tfile\ttimestamp_ms\thash\tkept\trepresentative\tdistance",
        f"0\tva\ta.jpg\t0\t{base:016x}\t0\tvb/d.jpg\t0",
        f"0\tva\tb.jpg\t500\t{chain[1]:016x}\t0\tvb/d.jpg\t3",
        f"1\tva\tc.jpg\t1000\t{chain[2]:016x}\t1\tva/c.jpg\t0",
        f"0\tvb\td.jpg\t0\t{base:016x}\t1\tvb/d.jpg\t0",
        f"2\tvb\te.jpg\t500\t{~base & (2**64 - 1):016x}\t1\tvb/e.jpg\t0",
    ]
    assert deduplicate(pool_words(Pool(), 8), np.zeros(0, dtype=np.int64), 4) == ([], {}, [])
