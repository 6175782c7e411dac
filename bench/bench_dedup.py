"""Benchmark: near-duplicate pairs by naive chunked numpy versus multi-index hashing (MIH).

Plants near-duplicate groups in random hashes and prints, per size: the naive all-pairs time,
the MIH time (:func:`framesift.dedup.near_duplicate_pairs`), their ratio, whether both found the
same pairs, and the :func:`framesift.dedup.cluster_labels` time.

    python bench/bench_dedup.py                      # default sizes
    python bench/bench_dedup.py --sizes 10000 100000 --threshold 8 --naive-limit 100000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from framesift.dedup import _popcount, cluster_labels, near_duplicate_pairs

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


def timed(func: Callable[[], np.ndarray], repeat: int = 1) -> tuple[float, np.ndarray]:
    """Best wall time of ``repeat`` calls, and the result."""
    best = float("inf")
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--threshold", type=int, default=8)
    parser.add_argument("--bits", type=int, default=64, choices=(64, 128, 256))
    parser.add_argument("--naive-limit", type=int, default=100_000, help="skip naive above this")
    parser.add_argument("--n-blocks", type=int, default=None, help="force the MIH block count")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs (MIH, labels)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(f"bits={args.bits} threshold={args.threshold} n_blocks={args.n_blocks or 'auto'}")
    header = f"{'n':>9} {'naive_s':>9} {'mih_s':>8} {'ratio':>7} {'agree':>5} {'pairs':>9} "
    print(header + f"{'labels_s':>8}")
    for n in args.sizes:
        rng = np.random.default_rng([args.seed, n])  # same data for a size whatever the list
        words = planted_hashes(n, args.bits // 64, args.threshold, rng)
        mih_s, pairs = timed(
            lambda w=words: near_duplicate_pairs(w, args.threshold, n_blocks=args.n_blocks),
            args.repeat,
        )
        labels_s, _ = timed(lambda w=words: cluster_labels(w, args.threshold), args.repeat)
        naive, ratio, agree = "-", "-", "-"
        if n <= args.naive_limit:
            naive_s, reference = timed(lambda w=words: naive_pairs(w, args.threshold))
            naive, ratio = f"{naive_s:.3f}", f"{naive_s / mih_s:.1f}"
            agree = "yes" if np.array_equal(pairs, reference) else "NO"
        print(
            f"{n:>9} {naive:>9} {mih_s:>8.3f} {ratio:>7} {agree:>5} {len(pairs):>9} "
            f"{labels_s:>8.3f}"
        )


if __name__ == "__main__":
    main()
