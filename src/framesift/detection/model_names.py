"""Class names of an ultralytics checkpoint (``.pt``) read without torch.

A checkpoint is a zip holding a pickle; the detection model pickled in it carries its
``names``. Reading them with an unpickler that builds inert stand-ins for every class (and no
tensor data) takes milliseconds, where loading the model takes torch's import and seconds. So
``check_model`` checks ``filter.classes`` at once, while the detection worker loads the model in
the background (docs/worker.md). Anything unexpected gives None, and the caller asks the worker.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

_SAFE = {("collections", "OrderedDict"): OrderedDict, ("builtins", "set"): set}


class _Inert:
    """Stands in for any pickled class: keeps its arguments and state, runs no code of it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert(*args)

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _InertUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return _SAFE.get((module, name), _Inert)

    def persistent_load(self, pid: Any) -> None:  # tensor storages: not read
        return None


def checkpoint_names(path: str | Path) -> dict[int, str] | None:
    """The model's class id -> name map, or None when ``path`` is not a checkpoint read so."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            with archive.open(pickled) as handle:
                checkpoint = _InertUnpickler(handle).load()
        for key in ("ema", "model"):  # ultralytics loads the EMA weights when present
            state = getattr(checkpoint.get(key), "state", None)
            names = state.get("names") if isinstance(state, dict) else None
            if isinstance(names, dict) and names:
                return {int(k): str(v) for k, v in names.items()}
            if isinstance(names, list | tuple) and names:
                return dict(enumerate(map(str, names)))
    except Exception:  # noqa: BLE001 - not a checkpoint of this shape: the worker will say
        return None
    return None
