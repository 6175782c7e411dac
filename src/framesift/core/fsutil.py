"""Small filesystem helpers: atomic files and folders, hard links with a copy fallback."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8, as it is) to ``path`` via a temp file in the same folder and a
    rename: readers see the old file or the new one; a failed write leaves no temp file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8", newline="")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def staging_dir(final: str | Path) -> Path:
    """A fresh empty temp folder beside ``final`` (same filesystem, so a rename is atomic)."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    return tmp


def publish_dir(tmp: Path, final: str | Path) -> None:
    """Move a finished staging folder into place, replacing any old folder at ``final``.

    The old folder is renamed aside first and deleted afterwards (put back if the second rename
    fails), so readers see the old or the new folder, never a half-written one.
    """
    final = Path(final)
    old = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except OSError:
        if old is not None:
            os.rename(old, final)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


def link_or_copy(source: str | Path, target: str | Path) -> bool:
    """Hard-link ``source`` to ``target``; copy when linking is impossible. True if linked."""
    try:
        os.link(source, target)
        return True
    except OSError:
        shutil.copy2(source, target)
        return False
