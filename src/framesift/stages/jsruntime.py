"""The JavaScript runtime in which yt-dlp solves YouTube's challenges (``download.js_runtime``).

Since yt-dlp 2025.11.12, YouTube's signature and "n" challenges are solved by yt-dlp's EJS scripts
(PyPI ``yt-dlp-ejs``) running in an external JavaScript runtime. framesift depends on PyPI's
``deno`` package, so every install has one, and hands yt-dlp the runtime by absolute path: jobs
started by Snakemake, or on cluster nodes, need not have the virtualenv on ``PATH``.

Settings: ``auto`` (the bundled deno, else the first supported runtime on ``PATH``), a runtime
name (``deno``, ``node``, ``bun``, ``quickjs``), a path to a runtime binary, ``NAME:PATH`` (as
yt-dlp's ``--js-runtimes``), or ``none``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# yt-dlp's runtime keys, in the order ``auto`` tries them, and their usual executable names
RUNTIMES = ("deno", "node", "bun", "quickjs")
EXECUTABLES = {"deno": "deno", "node": "node", "bun": "bun", "quickjs": "qjs"}
AUTO, NONE = "auto", "none"


class JsRuntimeMissing(Exception):
    """The configured runtime cannot be used; the message is one line saying what to do."""


@dataclass(frozen=True)
class JsRuntime:
    """A runtime to hand to yt-dlp: its yt-dlp key and binary, or none at all."""

    name: str | None  # yt-dlp's key (deno, node, bun, quickjs); None: no runtime
    path: str | None
    source: str  # how it was found: "bundled", "PATH", "configured", "disabled", "not found"

    def ydl_params(self) -> dict[str, Any]:
        """The ``YoutubeDL`` parameters that enable exactly this runtime (or none)."""
        if self.name is None:
            return {"js_runtimes": {}}
        return {"js_runtimes": {self.name: {"path": self.path}}}

    def version(self) -> str | None:
        """The runtime's version as yt-dlp reads it (None: it does not run)."""
        info = _runtime_info(self.name, self.path)
        return info.version if info is not None else None

    def supported(self) -> bool:
        """Whether yt-dlp accepts this runtime's version (e.g. deno >= 2.3, node >= 22)."""
        info = _runtime_info(self.name, self.path)
        return bool(info is not None and info.supported)

    def describe(self) -> str:
        """One phrase for logs: ``deno 2.9.8 (bundled, /path/deno)`` or ``none (disabled)``."""
        if self.name is None:
            return f"none ({self.source})"
        info = _runtime_info(self.name, self.path)
        if info is None:
            return f"{self.name} (does not run: {self.path})"
        support = "" if info.supported else ", too old for yt-dlp"
        return f"{info.name} {info.version} ({self.source}{support}, {self.path})"


def _runtime_info(name: str | None, path: str | None) -> Any:
    """yt-dlp's own reading of a runtime binary (``JsRuntimeInfo``), or None."""
    if name is None or path is None:
        return None
    from yt_dlp.globals import supported_js_runtimes

    runtime_class = supported_js_runtimes.value.get(name)
    return runtime_class(path=path).info if runtime_class is not None else None


def bundled_deno() -> str | None:
    """The deno binary of PyPI's ``deno`` package (a framesift dependency), if installed."""
    try:
        import deno
    except ImportError:
        return None
    try:
        path = deno.find_deno_bin()
    except Exception:  # noqa: BLE001 - the package is there but its binary is not
        return None
    return str(Path(path).resolve()) if path and os.access(path, os.X_OK) else None


def _on_path(name: str) -> str | None:
    found = shutil.which(EXECUTABLES[name])
    return str(Path(found).resolve()) if found else None


def _name_of(binary: str) -> str | None:
    """The runtime a binary's file name says it is (``deno``, ``node18``, ``qjs``, ...)."""
    stem = Path(binary).name.lower()
    for name in RUNTIMES:
        if stem.startswith(EXECUTABLES[name]) or stem.startswith(name):
            return name
    return None


def resolve_js_runtime(setting: str | None = AUTO) -> JsRuntime:
    """The runtime that ``download.js_runtime = setting`` means on this machine.

    Raises :class:`JsRuntimeMissing` when an explicitly named runtime is not there; ``auto``
    never raises (it falls back to no runtime, which only YouTube needs).
    """
    setting = (setting or AUTO).strip()
    if setting == NONE:
        return JsRuntime(None, None, "disabled")
    if setting == AUTO:
        bundled = bundled_deno()
        if bundled:
            return JsRuntime("deno", bundled, "bundled")
        for name in RUNTIMES:
            found = _on_path(name)
            if found and JsRuntime(name, found, "PATH").supported():
                return JsRuntime(name, found, "PATH")
        return JsRuntime(None, None, "not found")
    if setting in RUNTIMES:
        bundled = bundled_deno() if setting == "deno" else None
        if bundled:
            return JsRuntime("deno", bundled, "bundled")
        found = _on_path(setting)
        if found is None:
            raise JsRuntimeMissing(
                f"download.js_runtime: {setting} is not installed (no {EXECUTABLES[setting]} "
                "on PATH): install it, or set download.js_runtime: auto"
            )
        return JsRuntime(setting, found, "PATH")
    prefix, colon, rest = setting.partition(":")
    name, path = (prefix, rest) if colon and prefix in RUNTIMES else (_name_of(setting), setting)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise JsRuntimeMissing(
            f"download.js_runtime: {path!r} is not an executable file: fix the path, "
            "or set download.js_runtime: auto"
        )
    if name is None:
        raise JsRuntimeMissing(
            f"download.js_runtime: cannot tell which runtime {path!r} is: write it as "
            f"NAME:PATH with NAME one of {', '.join(RUNTIMES)}"
        )
    return JsRuntime(name, str(Path(path).resolve()), "configured")


def challenge_providers(runtime: JsRuntime) -> dict[str, bool]:
    """yt-dlp's own check: each YouTube JS challenge provider -> available, for a downloader
    configured with ``runtime`` as download jobs configure it.

    Uses yt-dlp's challenge director (not a public API): when a yt-dlp release moves it, this
    returns ``{}`` and ``framesift doctor`` says it could not ask.
    """
    import yt_dlp

    try:
        from yt_dlp.extractor.youtube.jsc._director import initialize_jsc_director
    except ImportError:
        return {}
    params = {"quiet": True, "no_warnings": True, "logger": _Silent(), **runtime.ydl_params()}
    with yt_dlp.YoutubeDL(params) as ydl:
        try:
            director = initialize_jsc_director(ydl.get_info_extractor("Youtube"))
            return {p.PROVIDER_NAME: bool(p.is_available()) for p in director.providers.values()}
        except Exception:  # noqa: BLE001 - internals changed shape: report that we cannot tell
            return {}


class _Silent:
    """A yt-dlp logger that drops everything."""

    def debug(self, msg: str) -> None:
        pass

    info = warning = error = debug
