"""Benchmark: near-duplicate pairs by naive chunked numpy versus multi-index hashing (MIH).

Plants near-duplicate groups in random hashes and prints, per size: the naive all-pairs time,
the MIH time (:func:`framesift.hashing.dedup.near_duplicate_pairs`), their ratio, whether both
found the same pairs, the time of connected components over those pairs
(:func:`component_labels`, what a chaining dedup would keep) and the
:func:`framesift.hashing.dedup.greedy_cover` time (greedy cover in
:func:`framesift.hashing.dedup.preference_order`, what the aggregate runs), each as median wall
and CPU seconds, with the number of frames each keeps.

    python bench/bench_dedup.py                      # default sizes
    python bench/bench_dedup.py --sizes 10000 100000 --threshold 8 --naive-limit 100000
    python bench/bench_dedup.py --sizes 1000000 --naive-limit 0 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from framesift.hashing.dedup import (
    PREFER,
    Candidate,
    _popcount,
    greedy_cover,
    near_duplicate_pairs,
    preference_order,
)

DEFAULT_SIZES = (10_000, 30_000, 100_000, 300_000)


def planted_hashes(
    n: int, n_words: int, threshold: int, rng: np.random.Generator, share: float = 0.3
) -> np.ndarray:
    """Random hashes where ``share`` of the rows copy an earlier row with 0..threshold flips."""
    words = rng.integers(0, 2**64, size=(n, n_words), dtype=np.uint64, endpoint=False)
    copies = rng.choice(n, size=int(n * share), replace=False)
    copies.sort()
    copies = copies[copies > 0]
    sources = (rng.random(len(copies)) * copies).astype(np.int64)  # an earlier row
    words[copies] = words[sources]
    n_bits = 64 * n_words
    flips = rng.integers(0, threshold + 1, size=len(copies))
    for row, count in zip(copies, flips, strict=True):
        for bit in rng.choice(n_bits, size=count, replace=False):
            words[row, bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    return words


def naive_pairs(words: np.ndarray, threshold: int, chunk_elems: int = 1 << 18) -> np.ndarray:
    """All pairs i < j within ``threshold``: XOR + popcount of row chunks against later rows."""
    n = len(words)
    step = max(1, chunk_elems // max(n, 1))
    found = [np.zeros((0, 2), dtype=np.int64)]
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        dist = _popcount(words[lo:hi, 0][:, None] ^ words[None, lo:, 0])
        if words.shape[1] > 1:  # uint8 holds at most 255
            dist = dist.astype(np.uint16)
        for column in range(1, words.shape[1]):
            dist += _popcount(words[lo:hi, column][:, None] ^ words[None, lo:, column])
        i, j = np.nonzero(dist <= threshold)
        keep = j > i  # both relative to lo
        found.append(np.stack([i[keep] + lo, j[keep] + lo], axis=1).astype(np.int64))
    pairs = np.concatenate(found)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def component_labels(words: np.ndarray, threshold: int) -> np.ndarray:
    """Connected-component label of each row of the "within ``threshold`` bits" graph (equal
    hashes merged first, so a large group of them costs one row)."""
    unique, inverse = np.unique(words, axis=0, return_inverse=True)
    pairs = near_duplicate_pairs(unique, threshold)
    edges = (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1]))
    graph = coo_matrix(edges, shape=(len(unique), len(unique))).tocsr()
    return connected_components(graph, directed=False)[1][np.asarray(inverse).ravel()]


def timed(func: Callable[[], Any], repeat: int = 1) -> tuple[float, float, Any]:
    """Median wall and median CPU seconds of ``repeat`` calls, and the last result."""
    walls, cpus = [], []
    for _ in range(max(1, repeat)):
        wall, cpu = time.perf_counter(), time.process_time()
        result = func()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def random_candidates(n: int, rng: np.random.Generator) -> list[Candidate]:
    """Candidates with random sharpness and confidence, 1000 frames per "video"."""
    sharpness = rng.random(n).tolist()
    confidence = rng.random(n).tolist()
    return [Candidate(sharpness[i], confidence[i], (i // 1000, i)) for i in range(n)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--threshold", type=int, default=8)
    parser.add_argument("--bits", type=int, default=64, choices=(64, 128, 256))
    parser.add_argument("--naive-limit", type=int, default=100_000, help="skip naive above this")
    parser.add_argument("--n-blocks", type=int, default=None, help="force the MIH block count")
    parser.add_argument("--repeat", type=int, default=3, help="median of N runs (not naive)")
    parser.add_argument("--prefer", default="sharpest", choices=PREFER)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    t = args.threshold
    print(
        f"bits={args.bits} threshold={t} n_blocks={args.n_blocks or 'auto'} "
        f"prefer={args.prefer} repeat={args.repeat} (median; CPU seconds in brackets)"
    )
    print(
        f"{'n':>9} {'naive_s':>9} {'mih_s':>8} {'ratio':>7} {'agree':>5} {'pairs':>9} "
        f"{'labels_s (cpu)':>16} {'assign_s (cpu)':>16} {'components':>10} {'kept':>9}"
    )
    for n in args.sizes:
        rng = np.random.default_rng([args.seed, n])  # same data for a size whatever the list
        words = planted_hashes(n, args.bits // 64, t, rng)
        candidates = random_candidates(n, rng)
        mih_s, _, pairs = timed(
            lambda w=words: near_duplicate_pairs(w, t, n_blocks=args.n_blocks), args.repeat
        )
        labels_s, labels_cpu, labels = timed(lambda w=words: component_labels(w, t), args.repeat)
        assign_s, assign_cpu, cover = timed(
            lambda w=words, c=candidates: greedy_cover(w, t, preference_order(c, args.prefer)),
            args.repeat,
        )
        if len(cover.distance) and cover.distance.max() > t:
            raise AssertionError("a dropped hash is farther than the threshold from its kept one")
        naive, ratio, agree = "-", "-", "-"
        if n <= args.naive_limit:
            naive_s, _, reference = timed(lambda w=words: naive_pairs(w, t))
            naive, ratio = f"{naive_s:.3f}", f"{naive_s / mih_s:.1f}"
            agree = "yes" if np.array_equal(pairs, reference) else "NO"
        components = int(labels.max()) + 1 if len(labels) else 0
        labels_col = f"{labels_s:.3f} ({labels_cpu:.2f})"
        assign_col = f"{assign_s:.3f} ({assign_cpu:.2f})"
        print(
            f"{n:>9} {naive:>9} {mih_s:>8.3f} {ratio:>7} {agree:>5} {len(pairs):>9} "
            f"{labels_col:>16} {assign_col:>16} {components:>10} {len(cover.kept):>9}"
        )


if __name__ == "__main__":
    main()
