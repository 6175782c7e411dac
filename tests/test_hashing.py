"""Per-video perceptual hashing: real images, real imagehash."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from framesift.hashing import (
    HASH_TYPES,
    FrameHash,
    FrameInput,
    hash_frames,
    hash_image,
    read_hash_table,
    sharpness,
    write_hash_table,
)


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
    near = hash_image(original, hash_type) - hash_image(recompressed(original), hash_type)
    far = hash_image(original, hash_type) - hash_image(pattern(2), hash_type)
    assert near <= 4
    assert far >= 16


def test_hash_frames_collapses_consecutive_near_duplicates(tmp_path: Path) -> None:
    a, b = pattern(1), pattern(2)
    paths = [
        save(a, tmp_path / "f0.png"),
        save(recompressed(a), tmp_path / "f1.jpg"),
        save(recompressed(a, quality=80, scale=0.8), tmp_path / "f2.jpg"),
        save(b, tmp_path / "f3.png"),
        save(recompressed(b), tmp_path / "f4.jpg"),
        save(a, tmp_path / "f5.png"),  # A again after B: not consecutive, so kept
    ]
    frames = [FrameInput(p, 100 * i, 0.5 + i / 100) for i, p in enumerate(paths)]
    records = hash_frames(frames[::-1], collapse_threshold=4)  # input order does not matter
    assert [r.file for r in records] == [p.name for p in paths]
    assert [r.duplicate_of for r in records] == ["", "f0.png", "f0.png", "", "f3.png", ""]
    assert [r.timestamp_ms for r in records] == [0, 100, 200, 300, 400, 500]
    assert records[2].confidence == pytest.approx(0.52)


def test_collapse_compares_with_last_kept_frame_not_previous(tmp_path: Path) -> None:
    hashes = [hash_image(panorama_crop(offset)) for offset in (0, 4, 8)]
    threshold = max(hashes[0] - hashes[1], hashes[1] - hashes[2])
    assert hashes[0] - hashes[2] > threshold  # the pan drifts beyond the threshold
    frames = [
        FrameInput(save(panorama_crop(offset), tmp_path / f"pan{offset}.png"), offset, 0.9)
        for offset in (0, 4, 8)
    ]
    records = hash_frames(frames, collapse_threshold=int(threshold))
    assert [r.duplicate_of for r in records] == ["", "pan0.png", ""]


def test_collapse_disabled_with_negative_threshold(tmp_path: Path) -> None:
    path = save(pattern(3), tmp_path / "same.png")
    frames = [FrameInput(path, t, 0.9) for t in (0, 40, 80)]
    assert [r.duplicate_of for r in hash_frames(frames, collapse_threshold=-1)] == ["", "", ""]
    assert [r.duplicate_of for r in hash_frames(frames, collapse_threshold=0)] == [
        "",
        "same.png",
        "same.png",
    ]


@pytest.mark.parametrize("hash_type", HASH_TYPES)
def test_hash_frames_matches_hash_image_of_the_file(tmp_path: Path, hash_type: str) -> None:
    path = save(recompressed(pattern(4)), tmp_path / "frame.jpg")
    (record,) = hash_frames([FrameInput(path, 0, 0.7)], hash_type=hash_type)
    with Image.open(path) as image:
        assert record.hash_hex == str(hash_image(image, hash_type))
        assert record.sharpness == pytest.approx(sharpness(image))


def test_sharpness_of_blurred_image_is_lower() -> None:
    original = pattern(5)
    assert sharpness(original.filter(ImageFilter.GaussianBlur(2))) < sharpness(original)
    assert sharpness(Image.new("RGB", (64, 48), (90, 120, 30))) == 0.0
    assert sharpness(Image.new("L", (2, 2))) == 0.0


def test_hash_size_16_gives_256_bit_hex() -> None:
    text = str(hash_image(pattern(6), "phash", hash_size=16))
    assert len(text) == 64
    assert int(text, 16) < 2**256


def test_unknown_hash_type_lists_valid_types(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="phash, dhash, ahash, whash"):
        hash_image(pattern(1), "md5")
    with pytest.raises(ValueError, match="phash, dhash, ahash, whash"):
        hash_frames([], hash_type="colorhash")
    with pytest.raises(ValueError, match="unknown hash_type"):
        write_hash_table(tmp_path / "h.tsv", [], "md5", 8)


def test_bad_hash_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="hash_size"):
        hash_image(pattern(1), "phash", hash_size=1)
    with pytest.raises(ValueError, match="hash_size"):
        hash_frames([], hash_size=0)
    with pytest.raises(ValueError, match="power-of-two"):
        hash_image(pattern(1), "whash", hash_size=6)


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


def test_hash_frames_table_round_trip(tmp_path: Path) -> None:
    paths = [
        save(pattern(7), tmp_path / "a.png"),
        save(recompressed(pattern(7)), tmp_path / "b.jpg"),
    ]
    records = hash_frames([FrameInput(p, i, 0.8) for i, p in enumerate(paths)], hash_size=16)
    write_hash_table(tmp_path / "t.tsv", records, "phash", 16)
    assert read_hash_table(tmp_path / "t.tsv") == ({"hash_type": "phash", "hash_size": 16}, records)


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
