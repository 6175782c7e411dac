"""Per-video perceptual hashing: real images, real imagehash, hashes pinned on committed frames."""

from __future__ import annotations

import io
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from framesift.core.config import settings_for
from framesift.core.settings import HashSettings
from framesift.detection.detector import Detection, read_frame, sign
from framesift.hashing.image_hash import SHARPNESS_SIDE, sharpness, signature
from framesift.hashing.tables import (
    HASH_TYPES,
    FrameHash,
    HashSpec,
    SignedFrame,
    VideoTables,
    collapse,
    hex_distance,
    read_hash_table,
    write_hash_table,
)

GOLDEN_DIR = Path(__file__).parents[1] / "data" / "golden_hashes"
# Hex hashes computed once by imagehash 4.3.2 (Pillow 13, libjpeg-turbo) from the committed 160x90
# JPEGs (a colour gradient + sine stripes, five filled shapes, Gaussian noise; quality 85,
# frame_a 4:2:0 like ffmpeg's frames, frame_b/c 4:4:4). (hash_type, hash_size) -> value.
GOLDEN = {
    "frame_a.jpg": {
        ("phash", 8): "855a38b5cf723127",
        ("dhash", 8): "31f5cc6966ce3ee7",
        ("ahash", 8): "00000030337fffff",
        ("whash", 8): "000000313f7fffff",
        ("phash", 16): "851d5a9818e0356dcf2b726a306c276363634a1ca51c38e772e3a637a737a73e",
    },
    "frame_b.jpg": {
        ("phash", 8): "8246bd381ea7c763",
        ("dhash", 8): "3ccccccdd9b99a7e",
        ("ahash", 8): "000022250d7dffff",
        ("whash", 8): "040424250d7dffff",
        ("phash", 16): "829046c8bd4b18571a1fa51ec79c61f2b0e339f5c7e2a708dad53a1cbd0e5e1e",
    },
    "frame_c.jpg": {
        ("phash", 8): "9234bd6b4f31e286",
        ("dhash", 8): "bef4ccbce9d99cf3",
        ("ahash", 8): "0000070f3d7dffff",
        ("whash", 8): "000006073d7dffff",
        ("phash", 16): "92d634b5b5ad4b4a4f2931abe25686b5b4864ad187252ed269ed49294b5a29ef",
    },
}
IMAGEHASH = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "ahash": imagehash.average_hash,
    "whash": imagehash.whash,
}
PHASH = HashSpec("phash", 8, negatives=False)


def signed(path: Path, timestamp_ms: int, confidence: float = 0.5, spec=PHASH) -> SignedFrame:
    """A frame file signed as the worker signs a decoded frame: hash and sharpness at once."""
    with Image.open(path) as image:
        return SignedFrame(path.name, timestamp_ms, signature(image, spec), confidence)


def pattern(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A colourful smooth pattern with a few rectangles; different seeds look different."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(size)
    pixels = np.zeros((height, width, 3))
    for channel in range(3):
        for _ in range(4):
            fx, fy = rng.uniform(1, 8, 2)
            pixels[..., channel] += np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 6.28))
    pixels = (pixels - pixels.min()) / np.ptp(pixels) * 255
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        side = int(rng.integers(10, 40))
        draw.rectangle([x0, y0, x0 + side, y0 + side], fill=tuple(rng.integers(0, 256, 3).tolist()))
    return image


def recompressed(image: Image.Image, quality: int = 60, scale: float = 0.9) -> Image.Image:
    """The same picture, rescaled and JPEG re-compressed (a near-duplicate)."""
    size = (int(image.width * scale), int(image.height * scale))
    buffer = io.BytesIO()
    image.resize(size, Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def panorama_crop(offset: int) -> Image.Image:
    """A 240x240 window at ``offset`` of a wide smooth grayscale pattern (a slow pan)."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:240, 0:640] / 240
    pixels = np.zeros((240, 640))
    for _ in range(6):
        fx, fy = rng.uniform(0.5, 4, 2)
        pixels += np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 6.28))
    pixels = (pixels - pixels.min()) / np.ptp(pixels) * 255
    return Image.fromarray(pixels.astype(np.uint8)).crop((offset, 0, offset + 240, 240))


def save(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


@pytest.mark.parametrize("hash_type", HASH_TYPES)
def test_near_duplicate_is_close_and_other_image_is_far(hash_type: str) -> None:
    original = pattern(1)
    spec = HashSpec(hash_type, 8, negatives=False)
    hashes = [signature(image, spec).hash_hex for image in (recompressed(original), pattern(2))]
    near, far = (hex_distance(signature(original, spec).hash_hex, other) for other in hashes)
    assert near <= 4
    assert far >= 16


def test_collapse_marks_consecutive_near_duplicates(tmp_path: Path) -> None:
    a, b = pattern(1), pattern(2)
    paths = [
        save(a, tmp_path / "f0.png"),
        save(recompressed(a), tmp_path / "f1.jpg"),
        save(recompressed(a, quality=80, scale=0.8), tmp_path / "f2.jpg"),
        save(b, tmp_path / "f3.png"),
        save(recompressed(b), tmp_path / "f4.jpg"),
        save(a, tmp_path / "f5.png"),  # A again after B: not consecutive, so kept
    ]
    frames = [signed(p, 100 * i, 0.5 + i / 100) for i, p in enumerate(paths)]
    records = collapse(frames[::-1], collapse_threshold=4)  # input order does not matter
    assert [r.file for r in records] == [p.name for p in paths]
    assert [r.duplicate_of for r in records] == ["", "f0.png", "f0.png", "", "f3.png", ""]
    assert [r.timestamp_ms for r in records] == [0, 100, 200, 300, 400, 500]
    assert records[2].confidence == pytest.approx(0.52)


def test_collapse_compares_with_last_kept_frame_not_previous(tmp_path: Path) -> None:
    hashes = [imagehash.phash(panorama_crop(offset)) for offset in (0, 4, 8)]
    threshold = max(hashes[0] - hashes[1], hashes[1] - hashes[2])
    assert hashes[0] - hashes[2] > threshold  # the pan drifts beyond the threshold
    frames = [
        signed(save(panorama_crop(offset), tmp_path / f"pan{offset}.png"), offset, 0.9)
        for offset in (0, 4, 8)
    ]
    records = collapse(frames, collapse_threshold=int(threshold))
    assert [r.duplicate_of for r in records] == ["", "pan0.png", ""]


def test_collapse_disabled_with_negative_threshold(tmp_path: Path) -> None:
    path = save(pattern(3), tmp_path / "same.png")
    frames = [signed(path, t, 0.9) for t in (0, 40, 80)]
    assert [r.duplicate_of for r in collapse(frames, collapse_threshold=-1)] == ["", "", ""]
    assert [r.duplicate_of for r in collapse(frames, collapse_threshold=0)] == [
        "",
        "same.png",
        "same.png",
    ]


@pytest.mark.parametrize(
    ("name", "hash_type", "hash_size"),
    sorted((name, *key) for name, values in GOLDEN.items() for key in values),
)
def test_golden_hashes_of_committed_frames(name: str, hash_type: str, hash_size: int) -> None:
    """imagehash still gives the pinned values, and framesift gives exactly imagehash's: from
    the file, and from the frame as the detection worker decodes it for the model."""
    path, expected = GOLDEN_DIR / name, GOLDEN[name][(hash_type, hash_size)]
    with Image.open(path) as image:
        assert str(IMAGEHASH[hash_type](image, hash_size=hash_size)) == expected
    spec = HashSpec(hash_type, hash_size, negatives=False)
    from_file = signed(path, 0, spec=spec).signature
    assert from_file.hash_hex == expected
    kept = [Detection(0, "square", 0.9, (1.0, 1.0, 20.0, 20.0))]
    decoded = read_frame(path, keep_gray=True)
    assert decoded is not None and decoded.image.shape == (90, 160, 3)
    assert sign(decoded, kept, spec) == from_file
    assert sign(decoded, [], spec) is None  # dropped: no hash
    assert sign(decoded, [], HashSpec(hash_type, hash_size, negatives=True)) is not None


def test_hex_distance_is_imagehash_difference() -> None:
    """The filter job collapses with hex hashes (no imagehash there): same distance."""
    for size in (8, 16):
        a, b = (
            imagehash.phash(pattern(1), hash_size=size),
            imagehash.phash(pattern(2), hash_size=size),
        )
        assert hex_distance(str(a), str(b)) == a - b > 0
        assert hex_distance(str(a), str(a)) == 0


@pytest.fixture(scope="module")
def hd_frame(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1280x720 JPEG frame (sharpness measured on a 4x box-reduced copy of it)."""
    path = tmp_path_factory.mktemp("hd") / "frame.jpg"
    image = pattern(4, size=(1280, 720))
    noise = np.random.default_rng(4).normal(0, 4, (720, 1280, 3))
    Image.fromarray((np.asarray(image) + noise).clip(0, 255).astype(np.uint8)).save(
        path, quality=90
    )
    return path


@pytest.mark.parametrize("hash_type", HASH_TYPES)
@pytest.mark.parametrize("hash_size", [8, 16])
def test_signature_matches_imagehash_of_the_file(
    hd_frame: Path, hash_type: str, hash_size: int
) -> None:
    spec = HashSpec(hash_type, hash_size, negatives=False)
    with Image.open(hd_frame) as image:
        assert signature(image, spec) == signed(hd_frame, 0, spec=spec).signature
        assert signature(image, spec).hash_hex == str(
            IMAGEHASH[hash_type](image, hash_size=hash_size)
        )
        assert signature(image, spec).sharpness == sharpness(image)


def test_sharpness_of_blurred_image_is_lower(hd_frame: Path) -> None:
    with Image.open(hd_frame) as image:
        frame = image.convert("RGB")
    scores = [sharpness(frame)] + [
        sharpness(frame.filter(ImageFilter.GaussianBlur(radius))) for radius in (0.5, 1, 2, 4)
    ]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)
    original = pattern(5)  # below the working scale: measured as it is
    assert sharpness(original.filter(ImageFilter.GaussianBlur(2))) < sharpness(original)
    assert sharpness(Image.new("RGB", (64, 48), (90, 120, 30))) == 0.0
    assert sharpness(Image.new("L", (2, 2))) == 0.0


def test_sharpness_is_measured_at_the_working_scale(hd_frame: Path) -> None:
    """A frame is box-reduced by ``max(w, h) // SHARPNESS_SIDE`` first (4 for 1280x720)."""
    with Image.open(hd_frame) as image:
        gray = image.convert("L")
        assert sharpness(image) == sharpness(gray) == sharpness(gray.reduce(4))
    assert SHARPNESS_SIDE == 320
    half = gray.resize((640, 360))
    assert sharpness(half.convert("RGB")) == sharpness(half) == sharpness(half.reduce(2))
    small = gray.resize((319, 180))  # smaller than the working scale: not reduced
    pixels = np.asarray(small, dtype=np.float64)
    laplacian = (
        pixels[:-2, 1:-1]
        + pixels[2:, 1:-1]
        + pixels[1:-1, :-2]
        + pixels[1:-1, 2:]
        - 4 * pixels[1:-1, 1:-1]
    )
    assert sharpness(small) == pytest.approx(laplacian.var())


def test_hash_size_16_gives_256_bit_hex() -> None:
    text = signature(pattern(6), HashSpec("phash", 16, negatives=False)).hash_hex
    assert len(text) == 64
    assert int(text, 16) < 2**256


def test_hash_spec_of_the_settings() -> None:
    """The spec a filter job sends the worker: the ``hash`` settings, and negatives hashed
    exactly when ``dataset.negatives > 0``."""
    settings = settings_for({"hash": {"type": "dhash", "size": 16}})
    assert HashSpec.of(settings.hash, settings.dataset) == HashSpec("dhash", 16, negatives=False)
    wanted = settings_for({"dataset": {"negatives": 0.1}})
    assert HashSpec.of(wanted.hash, wanted.dataset) == HashSpec("phash", 8, negatives=True)


def test_unknown_hash_type_lists_valid_types(tmp_path: Path) -> None:
    dataset = settings_for().dataset
    with pytest.raises(ValueError, match="phash, dhash, ahash, whash"):
        HashSpec.of(HashSettings("md5", 8, 4), dataset)
    with pytest.raises(ValueError, match="unknown hash_type"):
        write_hash_table(tmp_path / "h.tsv", [], "md5", 8)


def test_bad_hash_size_is_rejected(tmp_path: Path) -> None:
    dataset = settings_for().dataset
    with pytest.raises(ValueError, match="hash_size"):
        HashSpec.of(HashSettings("phash", 1, 4), dataset)
    with pytest.raises(ValueError, match="hash_size"):
        write_hash_table(tmp_path / "h.tsv", [], "phash", 0)
    with pytest.raises(ValueError, match="power-of-two"):
        HashSpec.of(HashSettings("whash", 6, 4), dataset)


def test_hash_table_round_trip(tmp_path: Path) -> None:
    records = [
        FrameHash("f0.jpg", 0, "c26ce949d232a8f8", 27.636824392395955, 0.1, ""),
        FrameHash("f1.jpg", 40, "c26ce949d232a8f9", 1e-7, 0.30000000000000004, "f0.jpg"),
        FrameHash("f 2.jpg", 1_000_000, "0000000000000001", 0.0, 1.0, ""),
    ]
    path = tmp_path / "out" / "hashes.tsv"
    write_hash_table(path, records, "dhash", 8)
    meta, loaded = read_hash_table(path)
    assert meta == {"hash_type": "dhash", "hash_size": 8}
    assert loaded == records
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#") and "hash_type=dhash" in lines[0] and "hash_size=8" in lines[0]
    assert lines[1].split("\t")[0] == "file"
    assert sorted(p.name for p in path.parent.iterdir()) == ["hashes.tsv"]  # no temp file left


def test_empty_hash_table_round_trip_and_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "hashes.tsv"
    write_hash_table(path, [FrameHash("x.png", 1, "ff", 1.0, 1.0, "")], "phash", 2)
    write_hash_table(path, [], "whash", 16)
    assert read_hash_table(path) == ({"hash_type": "whash", "hash_size": 16}, [])


def test_signed_frames_table_round_trip(tmp_path: Path) -> None:
    paths = [
        save(pattern(7), tmp_path / "a.png"),
        save(recompressed(pattern(7)), tmp_path / "b.jpg"),
    ]
    spec = HashSpec("phash", 16, negatives=False)
    records = collapse([signed(p, i, 0.8, spec) for i, p in enumerate(paths)], 4)
    write_hash_table(tmp_path / "t.tsv", records, "phash", 16)
    assert read_hash_table(tmp_path / "t.tsv") == ({"hash_type": "phash", "hash_size": 16}, records)


def test_a_video_tables_from_its_signed_frames(tmp_path: Path) -> None:
    """What a filter job writes from the worker's signatures: its kept frames' table, their
    consecutive near-duplicates collapsed (``hash.consecutive_threshold``), and its candidate
    negatives' table; a video without frames gets two empty tables."""
    a, b = pattern(1), pattern(2)
    kept = [
        signed(save(a, tmp_path / "f0.png"), 0, 0.9),
        signed(save(recompressed(a), tmp_path / "f1.jpg"), 500, 0.8),
        signed(save(b, tmp_path / "f2.png"), 1000, 0.7),
    ]
    negative = [signed(save(pattern(3), tmp_path / "n0.png"), 250, 0.0)]
    tables = VideoTables(tmp_path / "hashes" / "v.tsv", tmp_path / "hashes" / "v.negatives.tsv")
    hashing = settings_for({"hash": {"consecutive_threshold": 4}}).hash
    assert tables.write(kept, negative, hashing) == 2
    meta, records = read_hash_table(tables.kept)
    assert meta == {"hash_type": "phash", "hash_size": 8}
    assert [(r.file, r.duplicate_of) for r in records] == [
        ("f0.png", ""),
        ("f1.jpg", "f0.png"),
        ("f2.png", ""),
    ]
    assert records[1].hash_hex == kept[1].signature.hash_hex and records[1].confidence == 0.8
    assert read_hash_table(tables.negatives)[1] == collapse(negative, 4)
    no_collapse = settings_for({"hash": {"consecutive_threshold": -1}}).hash
    assert tables.write(kept, [], no_collapse) == 3
    assert tables.write([], [], hashing) == 0
    for path in (tables.kept, tables.negatives):
        assert read_hash_table(path) == ({"hash_type": "phash", "hash_size": 8}, [])
    assert sorted(p.name for p in tables.kept.parent.iterdir()) == ["v.negatives.tsv", "v.tsv"]


def test_read_rejects_foreign_or_broken_tables(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.tsv"
    foreign.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="metadata"):
        read_hash_table(foreign)
    broken = tmp_path / "broken.tsv"
    write_hash_table(broken, [], "phash", 8)
    broken.write_text(broken.read_text() + "f.png\t12\tff\n")
    with pytest.raises(ValueError, match=r"broken.tsv:3: expected 6 columns"):
        read_hash_table(broken)


def test_write_rejects_tabs_in_file_names(tmp_path: Path) -> None:
    record = FrameHash("bad\tname.png", 0, "ff", 1.0, 1.0, "")
    with pytest.raises(ValueError, match="tab or newline"):
        write_hash_table(tmp_path / "h.tsv", [record], "phash", 8)
    assert not list(tmp_path.iterdir())


def test_a_failed_write_leaves_the_old_table_and_no_temp_file(tmp_path: Path) -> None:
    """Tables are written atomically (framesift.core.fsutil): a name UTF-8 cannot encode fails the
    write after the temp file was opened; the old table stays, nothing else is left."""
    path = tmp_path / "h.tsv"
    write_hash_table(path, [], "phash", 8)
    before = path.read_bytes()
    with pytest.raises(UnicodeEncodeError):
        write_hash_table(path, [FrameHash("\udcff.jpg", 0, "ff", 1.0, 1.0, "")], "phash", 8)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["h.tsv"]
