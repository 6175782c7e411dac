"""Report thumbnails: small JPEGs of frames with their boxes and class names drawn.

A thumbnail's name carries a digest of what it shows (source file, size, mtime, width, boxes,
class names), so unchanged ones are reused across runs; :meth:`Thumbnails.remove_stale` deletes
the ones a report no longer references.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from framesift.report.data import YoloBox

_VERSION = "1"  # bump when the drawing changes, so old thumbnails are redrawn
PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 200, 200),
    (240, 50, 230),
    (160, 160, 0),
    (0, 128, 128),
    (170, 110, 40),
)


def class_color(class_id: int) -> tuple[int, int, int]:
    """The colour of a class, the same in thumbnails and the report's bar chart."""
    return PALETTE[class_id % len(PALETTE)]


class Thumbnails:
    """Writes thumbnails into ``folder`` (reusing unchanged ones) and remembers which are used."""

    def __init__(self, folder: Path, class_names: Sequence[str]):
        self.folder = folder
        self.names = list(class_names)
        self.used: set[str] = set()
        self.written = 0
        folder.mkdir(parents=True, exist_ok=True)
        self._font = _font(14)

    def make(
        self, source: Path, width: int, boxes: Sequence[YoloBox] = ()
    ) -> tuple[str, int, int] | None:
        """(path relative to the folder's parent, width, height) of the thumbnail of
        ``source``; None when ``source`` cannot be read."""
        try:
            stat = source.stat()
        except OSError:
            return None
        key = json.dumps(
            [_VERSION, str(source), stat.st_size, stat.st_mtime_ns, width, boxes, self.names]
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", source.stem)[:60]
        name = f"{stem}-{digest}.jpg"
        target = self.folder / name
        try:
            if target.exists():
                with Image.open(target) as done:
                    size = done.size
            else:
                size = self._draw(source, target, width, boxes)
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
        self.used.add(name)
        return f"{self.folder.name}/{name}", size[0], size[1]

    def _draw(
        self, source: Path, target: Path, width: int, boxes: Sequence[YoloBox]
    ) -> tuple[int, int]:
        with Image.open(source) as img:
            img.draft("RGB", (width, max(1, width * img.height // max(img.width, 1))))
            img = img.convert("RGB")
            height = max(1, round(img.height * width / img.width))
            thumb = img.resize((width, height), Image.Resampling.LANCZOS)
        self._boxes(thumb, boxes)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        thumb.save(tmp, "JPEG", quality=82, optimize=True)
        os.replace(tmp, target)
        self.written += 1
        return thumb.size

    def _boxes(self, img: Image.Image, boxes: Sequence[YoloBox]) -> None:
        draw = ImageDraw.Draw(img)
        w, h = img.size
        for cls, cx, cy, bw, bh in boxes:
            color = class_color(cls)
            x1, y1 = (cx - bw / 2) * w, (cy - bh / 2) * h
            x2, y2 = (cx + bw / 2) * w, (cy + bh / 2) * h
            draw.rectangle((x1, y1, x2, y2), outline=color, width=2)
            text = self.names[cls] if 0 <= cls < len(self.names) else str(cls)
            left, top, right, bottom = draw.textbbox((0, 0), text, font=self._font)
            tw, th = right - left + 6, bottom - top + 4
            ty = y1 - th if y1 - th >= 0 else y1
            tx = min(max(x1, 0), max(w - tw, 0))
            draw.rectangle((tx, ty, tx + tw, ty + th), fill=color)
            draw.text((tx + 3 - left, ty + 2 - top), text, fill=(255, 255, 255), font=self._font)

    def remove_stale(self) -> int:
        """Delete files in the folder that this report does not reference; how many."""
        removed = 0
        for path in self.folder.iterdir():
            if path.name not in self.used and path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()
