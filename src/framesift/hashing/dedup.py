"""Near-duplicate clusters among many perceptual hashes, and one representative per cluster.

Hashes are rows of ``uint64`` words (:func:`hex_to_words`). Pairs within a Hamming distance are
found by multi-index hashing in vectorised numpy, never by comparing all pairs:

1. exactly equal hashes are collapsed first (``np.unique``); the search runs on distinct hashes;
2. the bits that vary are split into ``m`` blocks with radii ``r_k`` such that
   ``sum(r_k + 1) >= threshold + 1``; by pigeonhole two hashes within ``threshold`` differ by at
   most ``r_k`` bits in at least one block ``k``;
3. per block, hashes are bucketed by block value; candidates are the hashes in the same bucket
   plus, when ``r_k > 0``, the buckets reached by flipping up to ``r_k`` bits (each unordered
   pair probed once: only from the side whose highest flipped bit is 0);
4. candidates are verified with the full Hamming distance and de-duplicated.

``m`` is chosen by a cost model (probes versus expected random candidates), so a small
collection uses many exact-match blocks and a large one fewer blocks with neighbour probing.

Deduplication (:func:`greedy_cover`) is a greedy cover, not connected components (which
chain: on a slow pan every frame is near the next, so the whole pan would collapse to one
frame). Candidates are walked in preference order (:func:`preference_order`); an unassigned one
becomes a representative and claims every unassigned candidate within the threshold. So every
dropped candidate is within the threshold of its representative, and representatives are
pairwise farther apart than the threshold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

PREFER = ("sharpest", "confident", "earliest")

_WORD_BITS = 64
_DIRECT_MAX_BITS = 22  # blocks up to this width are looked up in a dense table, wider by search
_MAX_PROBES = 100_000  # largest Hamming ball (per block) the planner will enumerate
_CHUNK = 1 << 21  # elements per vectorised batch (bounds memory)
_MIN_PROGRESS = 1 / 32  # greedy cover: below this share decided per round, finish sequentially

# Cost model, in nanoseconds, measured on a 2-core x86 VM (numpy 2.x).
_NS_PROBE_DIRECT = 8.0  # one flipped-key lookup in a dense table
_NS_PROBE_SORTED = 150.0  # one flipped-key lookup by binary search
_NS_CANDIDATE = 30.0  # expanding and verifying one candidate pair
_NS_SORT_ITEM = 60.0  # bucketing one hash for one block
_NS_TABLE_SLOT = 6.0  # building one slot of a dense table
_NS_CALL = 30_000.0  # fixed overhead of one vectorised probe round (per block bit)

_HEX = re.compile("[0-9a-fA-F]*")
_EMPTY_PAIRS = np.zeros((0, 2), dtype=np.int64)

_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount_lut(x: np.ndarray) -> np.ndarray:
    """Bits set per uint64 element by a byte lookup table (for numpy < 2)."""
    x = np.ascontiguousarray(x, dtype=np.uint64)
    return _POP8[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)


_popcount = getattr(np, "bitwise_count", _popcount_lut)


# --------------------------------------------------------------------------- conversion


def hex_to_words(hex_hashes: Sequence[str], n_bits: int) -> np.ndarray:
    """Parse imagehash hex strings of ``n_bits`` bits into an ``(n, ceil(n_bits/64))`` uint64 array.

    Word 0 holds the most significant bits (the start of the hex string).
    """
    if n_bits < 1:
        raise ValueError(f"n_bits must be >= 1, got {n_bits}")
    n_words = -(-n_bits // _WORD_BITS)
    max_chars = -(-n_bits // 4)
    for index, text in enumerate(hex_hashes):
        if not 0 < len(text) <= max_chars:
            raise ValueError(
                f"hash {index} ({text!r}) has {len(text)} hex digits; "
                f"a {n_bits}-bit hash has at most {max_chars}"
            )
    width = 16 * n_words
    joined = "".join(text.rjust(width, "0") for text in hex_hashes)
    if not _HEX.fullmatch(joined):
        bad = next(i for i, t in enumerate(hex_hashes) if not _HEX.fullmatch(t))
        raise ValueError(f"hash {bad} ({hex_hashes[bad]!r}) is not a hex string")
    raw = bytes.fromhex(joined)
    words = np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(hex_hashes), n_words)
    spare = n_words * _WORD_BITS - n_bits
    if spare and words.size and np.any(words[:, 0] >> np.uint64(_WORD_BITS - spare)):
        bad = int(np.flatnonzero(words[:, 0] >> np.uint64(_WORD_BITS - spare))[0])
        raise ValueError(f"hash {bad} ({hex_hashes[bad]!r}) does not fit in {n_bits} bits")
    return words


def _as_words(words: np.ndarray) -> np.ndarray:
    """Validate and normalise to a C-contiguous (n, W) uint64 array."""
    array = np.asarray(words)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"words must have shape (n, n_words), got {array.shape}")
    if array.dtype != np.uint64:
        if array.dtype.kind not in "iu" or (array.size and array.min() < 0):
            raise ValueError(f"words must be uint64 hash words, got dtype {array.dtype}")
        array = array.astype(np.uint64)
    return np.ascontiguousarray(array)


def _check_threshold(threshold: int) -> int:
    if isinstance(threshold, bool) or int(threshold) != threshold or threshold < 0:
        raise ValueError(f"threshold must be an integer >= 0, got {threshold!r}")
    return int(threshold)


def hamming_distances(words: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between rows ``a[i]`` and ``b[i]`` of ``words`` (int64 array)."""
    dist = np.zeros(len(a), dtype=np.int64)
    for column in range(words.shape[1]):
        col = words[:, column]
        dist += _popcount(col[a] ^ col[b])
    return dist


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Block:
    """A block of bit positions (global index: word * 64 + bit, bit 0 = least significant)."""

    positions: tuple[int, ...]
    radius: int

    @property
    def width(self) -> int:
        return len(self.positions)


def _varying_positions(words: np.ndarray) -> np.ndarray:
    """Global positions of the bits that are not constant over all rows."""
    varying = np.bitwise_or.reduce(words, axis=0) ^ np.bitwise_and.reduce(words, axis=0)
    shifts = np.arange(_WORD_BITS, dtype=np.uint64)
    bits = (varying[:, None] >> shifts[None, :]) & np.uint64(1)
    word_index, bit_index = np.nonzero(bits)
    return word_index * _WORD_BITS + bit_index


def _ball(width: int, radius: int) -> int:
    """Number of keys within ``radius`` bit flips of a ``width``-bit key."""
    return sum(math.comb(width, k) for k in range(min(radius, width) + 1))


def _blocks_for(positions: np.ndarray, threshold: int, m: int) -> list[_Block]:
    """``m`` near-equal contiguous blocks (each at most 64 bits) with pigeonhole radii."""
    q, rem = divmod(threshold + 1, m)
    parts = np.array_split(positions, m)
    return [
        _Block(tuple(int(p) for p in part[:_WORD_BITS]), q if k < rem else q - 1)
        for k, part in enumerate(parts)
    ]


def _probe_cost(width: int, n: int, radius: int, direct: bool) -> float:
    """Estimated nanoseconds for the flipped-key lookups of one block (no candidates)."""
    lookups = n * (_ball(width, radius) - 1) / 2  # each unordered pair probed from one side
    if direct:
        return lookups * _NS_PROBE_DIRECT + 2.0**width * _NS_TABLE_SLOT + width * _NS_CALL
    return lookups * _NS_PROBE_SORTED + width * _NS_CALL


def _use_direct(width: int, n: int, radius: int) -> bool:
    """Whether a dense table (vs binary search) is the cheaper lookup for this block."""
    return width <= _DIRECT_MAX_BITS and _probe_cost(width, n, radius, True) < _probe_cost(
        width, n, radius, False
    )


def _block_cost(block: _Block, n: int) -> float:
    """Estimated nanoseconds to search one block over ``n`` distinct random hashes."""
    width, radius = block.width, block.radius
    ball = _ball(width, radius)
    if ball > _MAX_PROBES:
        return math.inf
    cost = n * _NS_SORT_ITEM + n * n / 2 * ball / 2.0**width * _NS_CANDIDATE
    if radius > 0:
        cost += _probe_cost(width, n, radius, _use_direct(width, n, radius))
    return cost


def _plan_blocks(
    positions: np.ndarray, threshold: int, n: int, n_blocks: int | None = None
) -> list[_Block]:
    """Cheapest block split (by the cost model) of ``positions`` for ``n`` distinct hashes."""
    if n_blocks is not None:
        if not 1 <= n_blocks <= min(threshold + 1, len(positions)):
            raise ValueError(
                f"n_blocks must be in 1..{min(threshold + 1, len(positions))}, got {n_blocks}"
            )
        blocks = _blocks_for(positions, threshold, n_blocks)
        if any(_ball(b.width, b.radius) > _MAX_PROBES for b in blocks):
            raise ValueError(f"n_blocks={n_blocks} needs more than {_MAX_PROBES} probes per key")
        return blocks
    best: list[_Block] = []
    best_cost = math.inf
    for m in range(1, min(threshold + 1, len(positions)) + 1):
        blocks = _blocks_for(positions, threshold, m)
        cost = sum(_block_cost(block, n) for block in blocks)
        if cost < best_cost:
            best, best_cost = blocks, cost
    return best


def _block_keys(words: np.ndarray, positions: Sequence[int]) -> np.ndarray:
    """Block value of every row: the bits at ``positions`` packed into one uint64."""
    runs: list[tuple[int, int, int]] = []  # (word, lowest bit, length)
    for pos in positions:
        word, bit = divmod(pos, _WORD_BITS)
        if runs and runs[-1][0] == word and runs[-1][1] + runs[-1][2] == bit:
            runs[-1] = (word, runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((word, bit, 1))
    keys = np.zeros(len(words), dtype=np.uint64)
    for word, low, length in runs:
        mask = np.uint64((1 << length) - 1)
        value = (words[:, word] >> np.uint64(low)) & mask
        keys = value if length == _WORD_BITS else (keys << np.uint64(length)) | value
    return keys


# --------------------------------------------------------------------------- candidate search


class _BlockIndex:
    """Hashes bucketed by one block value; yields candidate ranges ``(src, start, count)``.

    A range means: row ``src`` is a candidate partner of rows ``order[start:start + count]``.
    """

    def __init__(self, keys: np.ndarray, width: int, radius: int) -> None:
        self.direct = radius > 0 and _use_direct(width, len(keys), radius)
        self.keys = keys.astype(np.int32) if self.direct else keys  # int32: half the traffic
        self.width = width
        self.order = np.argsort(self.keys, kind="stable")
        self.sorted_keys = self.keys[self.order]
        if self.direct:
            self.counts = np.bincount(self.keys, minlength=1 << width)
            self.starts = np.cumsum(self.counts) - self.counts
            self.occupied = self.counts > 0  # 1 byte a slot: a cache-friendly first filter
        elif radius > 0:
            self.unique, self.ustart, self.ucount = np.unique(
                self.sorted_keys, return_index=True, return_counts=True
            )

    def exact_ranges(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Pairs with equal block value: each sorted position with the later ones of its bucket."""
        n = len(self.sorted_keys)
        boundary = np.flatnonzero(self.sorted_keys[1:] != self.sorted_keys[:-1]) + 1
        ends = np.diff(np.concatenate(([0], boundary, [n])))
        group_end = np.repeat(np.concatenate((boundary, [n])), ends)
        position = np.arange(n)
        count = group_end - position - 1
        keep = np.flatnonzero(count > 0)
        yield self.order[keep], keep + 1, count[keep]

    def _lookup(self, probe: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hit indices into probe, start, count) of the non-empty buckets ``probe`` lands in."""
        if self.direct:
            hit = np.flatnonzero(self.occupied[probe])
            slot = probe[hit]
            return hit, self.starts[slot], self.counts[slot]
        where = np.searchsorted(self.unique, probe)
        np.minimum(where, len(self.unique) - 1, out=where)
        hit = np.flatnonzero(self.unique[where] == probe)
        where = where[hit]
        return hit, self.ustart[where], self.ucount[where]

    def probe_ranges(self, radius: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Pairs whose block values differ in 1..radius bits, each unordered pair once."""
        for top in range(self.width):
            masks = _masks_with_top_bit(top, radius).astype(self.keys.dtype)
            src = np.flatnonzero((self.keys & self.keys.dtype.type(1 << top)) == 0)
            step = max(1, _CHUNK // len(masks))
            for lo in range(0, len(src), step):
                rows = src[lo : lo + step]
                probe = (self.keys[rows][:, None] ^ masks[None, :]).ravel()
                hit, start, count = self._lookup(probe)
                if len(hit):
                    yield rows[hit // len(masks)], start, count


def _masks_with_top_bit(top: int, radius: int) -> np.ndarray:
    """All flip masks of 1..radius bits whose highest set bit is ``top``."""
    masks = []
    for extra in range(min(radius - 1, top) + 1):
        for lower in combinations(range(top), extra):
            masks.append((1 << top) | sum(1 << b for b in lower))
    return np.array(masks, dtype=np.uint64)


def _expand(
    order: np.ndarray, src: np.ndarray, start: np.ndarray, count: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Materialise ranges as (a, b) row pairs, at most about ``_CHUNK`` pairs per batch."""
    single = count == 1  # the common case in sparse buckets: no repeat needed
    if single.any():
        yield src[single], order[start[single]]
        if single.all():
            return
        multi = ~single
        src, start, count = src[multi], start[multi], count[multi]
    if not len(src):
        return
    csum = np.cumsum(count)
    lo = 0
    while lo < len(src):
        base = csum[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(csum, base + _CHUNK, side="right")))
        c = count[lo:hi]
        total = int(c.sum())
        offset = np.arange(total) - np.repeat(np.cumsum(c) - c, c)
        yield np.repeat(src[lo:hi], c), order[np.repeat(start[lo:hi], c) + offset]
        lo = hi


def _distinct_pairs(words: np.ndarray, threshold: int, n_blocks: int | None = None) -> np.ndarray:
    """Pairs (i < j) of rows of ``words`` (all rows distinct) within ``threshold`` bits."""
    n = len(words)
    if n < 2 or threshold == 0:  # distinct hashes are at distance >= 1
        return _EMPTY_PAIRS
    positions = _varying_positions(words)
    if len(positions) <= threshold:  # every pair is within the threshold
        return np.stack(np.triu_indices(n, k=1), axis=1).astype(np.int64)
    found: list[np.ndarray] = []
    for block in _plan_blocks(positions, threshold, n, n_blocks):
        index = _BlockIndex(_block_keys(words, block.positions), block.width, block.radius)
        sources = [index.exact_ranges()]
        if block.radius > 0:
            sources.append(index.probe_ranges(block.radius))
        for source in sources:
            for src, start, count in source:
                for a, b in _expand(index.order, src, start, count):
                    keep = hamming_distances(words, a, b) <= threshold
                    found.append(_pack(a[keep], b[keep], n))
    if not found:
        return _EMPTY_PAIRS
    keys = np.unique(np.concatenate(found))
    return np.stack(np.divmod(keys, n), axis=1).astype(np.int64)


def _pack(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Unordered pairs as sortable int64 keys ``min * n + max``."""
    a = a.astype(np.int64)
    b = b.astype(np.int64)
    return np.minimum(a, b) * n + np.maximum(a, b)


def _unique_rows(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows and, for each input row, the index of its distinct row."""
    if words.shape[1] == 1:
        unique, inverse = np.unique(words[:, 0], return_inverse=True)
        return unique.reshape(-1, 1), inverse.reshape(-1)
    unique, inverse = np.unique(words, axis=0, return_inverse=True)
    return np.ascontiguousarray(unique), inverse.reshape(-1)


# --------------------------------------------------------------------------- public API


def near_duplicate_pairs(
    words: np.ndarray, threshold: int, *, n_blocks: int | None = None
) -> np.ndarray:
    """All index pairs ``(i, j)``, ``i < j``, with Hamming distance <= ``threshold``.

    Returns a ``(k, 2)`` int64 array sorted by ``(i, j)``. Rows with identical hashes are all
    paired with each other, so ``g`` identical rows alone give ``g*(g-1)/2`` pairs;
    :func:`greedy_cover` groups rows without materialising those. ``n_blocks`` overrides the
    planner's number of blocks (for benchmarks and tests).
    """
    words = _as_words(words)
    threshold = _check_threshold(threshold)
    unique, inverse = _unique_rows(words)
    distinct = _distinct_pairs(unique, threshold, n_blocks)
    return _rows_pairs(inverse, distinct, len(unique))


def near_any(words: np.ndarray, others: np.ndarray, threshold: int) -> np.ndarray:
    """For each row of ``words``: whether some row of ``others`` is within ``threshold`` bits.

    Both sides are collapsed to distinct rows first, so large groups of equal hashes cost one
    pair each.
    """
    found = np.zeros(len(words), dtype=bool)
    if len(words) == 0 or len(others) == 0:
        return found
    mine, inverse = np.unique(_as_words(words), axis=0, return_inverse=True)
    theirs = np.unique(_as_words(others), axis=0)
    pairs = near_duplicate_pairs(np.concatenate([theirs, mine]), threshold)
    n = len(theirs)
    across = pairs[(pairs[:, 0] < n) & (pairs[:, 1] >= n), 1] - n
    hit = np.zeros(len(mine), dtype=bool)
    hit[across] = True
    return hit[np.asarray(inverse).ravel()]


def _rows_pairs(inverse: np.ndarray, distinct: np.ndarray, n_unique: int) -> np.ndarray:
    """Expand pairs of distinct hashes to pairs of input rows (plus pairs of identical rows)."""
    n = len(inverse)
    members = np.argsort(inverse, kind="stable")
    size = np.bincount(inverse, minlength=n_unique)
    first = np.cumsum(size) - size
    # identical rows: each member with the later members of its group
    group_end = np.repeat(first + size, size)
    count = group_end - np.arange(n) - 1
    same = [_pack(a, b, n) for a, b in _expand(members, members, np.arange(n) + 1, count)]
    # distinct hashes u < v: every member of u with every member of v
    u, v = distinct[:, 0], distinct[:, 1]
    per = size[u] * size[v]
    total = int(per.sum())
    idx = np.arange(total) - np.repeat(np.cumsum(per) - per, per)
    su = np.repeat(size[v], per)
    a = members[np.repeat(first[u], per) + idx // su]
    b = members[np.repeat(first[v], per) + idx % su]
    keys = np.sort(np.concatenate([*same, _pack(a, b, n)]))
    return np.stack(np.divmod(keys, max(n, 1)), axis=1).astype(np.int64)


def _by_first_appearance(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 0..k-1 in the order in which they first occur."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


@dataclass(frozen=True)
class Candidate:
    """One clustered item: ``order`` is the tie-break sort key, smaller = earlier."""

    sharpness: float
    confidence: float
    order: tuple


def preference_order(candidates: Sequence[Candidate], prefer: str = "sharpest") -> np.ndarray:
    """Indices of ``candidates``, most preferred first.

    ``sharpest``: max sharpness, then higher confidence, then earliest ``order``;
    ``confident``: max confidence, then sharpness, then earliest; ``earliest``: min ``order``.
    Remaining ties go to the lower index.
    """
    if prefer not in PREFER:
        raise ValueError(f"unknown prefer {prefer!r}; use one of {', '.join(PREFER)}")
    n = len(candidates)
    keys = _order_keys([c.order for c in candidates])  # least significant first
    if prefer != "earliest":
        sharp = -np.fromiter((c.sharpness for c in candidates), np.float64, n)
        conf = -np.fromiter((c.confidence for c in candidates), np.float64, n)
        keys += [sharp, conf] if prefer == "confident" else [conf, sharp]
    return np.lexsort(keys).astype(np.int64)  # stable: ties keep the lower index first


def _order_keys(orders: list) -> list[np.ndarray]:
    """``np.lexsort`` keys (least significant first) that sort like the ``orders`` tuples."""
    n = len(orders)
    try:
        table = np.array(orders)
    except (ValueError, TypeError):  # ragged tuples
        table = None
    if table is not None and table.ndim in (1, 2) and table.dtype.kind in "iub" and n:
        table = table.reshape(n, -1)
        return [table[:, k] for k in range(table.shape[1] - 1, -1, -1)]
    by_order = sorted(range(n), key=orders.__getitem__)  # general tuples: dense rank in Python
    rank = np.zeros(n, dtype=np.int64)
    current = 0
    for previous, index in zip(by_order, by_order[1:], strict=False):
        current += orders[index] != orders[previous]
        rank[index] = current
    return [rank]


@dataclass(frozen=True, eq=False)
class Assignment:
    """Greedy-cover result, one entry per input row (int64 arrays).

    ``representative``: index of the row kept in this row's place (itself when kept);
    ``distance``: Hamming distance to the representative (0 when kept), always <= threshold;
    ``cluster``: ``0..k-1``, one per representative, numbered by first appearance.
    """

    representative: np.ndarray
    distance: np.ndarray
    cluster: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        """Indices of the representatives, ascending."""
        return np.flatnonzero(self.representative == np.arange(len(self.representative)))

    def representatives(self) -> dict[int, int]:
        """Cluster id -> index of its representative."""
        kept = self.kept
        return dict(zip(self.cluster[kept].tolist(), kept.tolist(), strict=True))


def greedy_cover(words: np.ndarray, threshold: int, order: np.ndarray | None = None) -> Assignment:
    """Walk the rows in ``order`` (most preferred first; default: index order): an unassigned
    row becomes a representative and claims every unassigned row within ``threshold`` bits.

    Equal hashes are collapsed first (a hash is reached at its most preferred row and claims all
    its copies), pairs of distinct hashes come from the multi-index search, and the walk runs as
    vectorised rounds (:func:`_cover_nodes`).
    """
    words = _as_words(words)
    threshold = _check_threshold(threshold)
    n = len(words)
    order = _check_order(order, n)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Assignment(empty, empty.copy(), empty.copy())
    unique, inverse = _unique_rows(words)
    m = len(unique)
    first = np.full(m, n, dtype=np.int64)  # walk position at which each distinct hash is reached
    np.minimum.at(first, inverse[order], np.arange(n))
    lead = order[first]  # the most preferred row of each distinct hash
    node_hash = np.argsort(first)  # node k: the k-th distinct hash reached by the walk
    node_of = np.empty(m, dtype=np.int64)
    node_of[node_hash] = np.arange(m)
    if len(_varying_positions(unique)) <= threshold:  # every pair is within the threshold
        rep_node = np.zeros(m, dtype=np.int64)
    else:
        pairs = _distinct_pairs(unique, threshold)
        a, b = node_of[pairs[:, 0]], node_of[pairs[:, 1]]
        rep_node = _cover_nodes(m, np.minimum(a, b), np.maximum(a, b))
    representative = lead[node_hash[rep_node[node_of]]][inverse]
    distance = hamming_distances(words, np.arange(n), representative)
    return Assignment(representative, distance, _by_first_appearance(representative))


def _check_order(order: np.ndarray | None, n: int) -> np.ndarray:
    """``order`` as int64, or ``0..n-1`` when None; it must be a permutation of ``0..n-1``."""
    if order is None:
        return np.arange(n, dtype=np.int64)
    array = np.asarray(order)
    if (
        array.shape != (n,)
        or array.dtype.kind not in "iu"
        or not np.array_equal(np.sort(array), np.arange(n))
    ):
        raise ValueError(f"order must be a permutation of 0..{n - 1}")
    return array.astype(np.int64)


def _cover_nodes(m: int, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Representative node of each of ``m`` nodes walked ``0, 1, ..., m-1``; ``(p[k], q[k])``
    with ``p < q`` are the edges ("within the threshold").

    The representatives form the lexicographically first maximal independent set. Each round
    makes every undecided node without an undecided earlier neighbour a representative and
    drops its undecided neighbours, which is what the sequential walk does, in a few vectorised
    rounds on typical data. A chain walked along its length (a slow pan, earliest first) decides
    only a few nodes per round, so once a round decides less than ``_MIN_PROGRESS`` of the
    undecided nodes the rest is walked in a plain loop. A dropped node's representative is its
    earliest representative neighbour, the one that claimed it in the walk.
    """
    all_p, all_q = p, q
    state = np.zeros(m, dtype=np.int8)  # 0 undecided, 1 representative, 2 dropped
    blocked = np.zeros(m, dtype=bool)
    nodes = np.arange(m)
    while len(nodes):
        blocked[q] = True
        state[nodes[~blocked[nodes]]] = 1
        blocked[q] = False
        state_p = state[p]
        state[q[state_p == 1]] = 2
        keep = (state_p == 0) & (state[q] == 0)
        p, q = p[keep], q[keep]
        undecided = len(nodes)
        nodes = nodes[state[nodes] == 0]
        if len(nodes) and undecided - len(nodes) < _MIN_PROGRESS * undecided:
            _walk(state, nodes, p, q)
            break
    is_rep = state == 1
    claim = is_rep[all_p] & ~is_rep[all_q]
    rep = np.arange(m)
    np.minimum.at(rep, all_q[claim], all_p[claim])
    return rep


def _walk(state: np.ndarray, nodes: np.ndarray, p: np.ndarray, q: np.ndarray) -> None:
    """Sequential greedy walk of the undecided ``nodes`` (ascending) over edges ``p < q``."""
    by_p = np.argsort(p, kind="stable")
    p, q = p[by_p], q[by_p]
    start = np.searchsorted(p, nodes, side="left").tolist()
    stop = np.searchsorted(p, nodes, side="right").tolist()
    later = q.tolist()
    flags = bytearray(state.tobytes())
    for node, lo, hi in zip(nodes.tolist(), start, stop, strict=True):
        if flags[node] == 0:
            flags[node] = 1
            for other in later[lo:hi]:
                flags[other] = 2
    state[:] = np.frombuffer(bytes(flags), dtype=np.int8)
