"""The ``PYTHONPATH`` that makes child processes import this copy of framesift.

A run's jobs and detection workers are new Python processes, and framesift need not be
installed where they run (cluster nodes, conda environments): ``rules/common.smk`` exports this
for every job, and the worker client passes it to the workers it starts.
"""

from __future__ import annotations

import os
from pathlib import Path

LIBRARY_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding framesift/


def library_pythonpath(current: str | None = None, root: str = LIBRARY_ROOT) -> str:
    """``root`` first, then the entries of ``current`` (default: this process's PYTHONPATH)
    other than ``root``: a child imports this framesift, and a path already there is not
    repeated."""
    current = os.environ.get("PYTHONPATH", "") if current is None else current
    rest = [entry for entry in current.split(os.pathsep) if entry and entry != root]
    return os.pathsep.join([root, *rest])
