"""The URL file: parse lines, reject malformed ones, derive a stable filesystem-safe id per video.

Ids are computed without network access. Every YouTube form of one video gives its 11-character
id; any other URL gets ``<slug>-<hash>`` from the normalised URL (slug: the last path segment's
stem, for readability; hash: 10 hex digits of SHA-256).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

VIDEO_ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_YOUTUBE_HOSTS = {"youtube.com", "youtube-nocookie.com"}
_YOUTUBE_PATH_PREFIXES = ("shorts", "embed", "live", "v", "e")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


@dataclass(frozen=True)
class UrlEntry:
    """One valid URL line: the URL as written (trimmed), its video id and where it came from."""

    url: str
    video_id: str
    line_no: int


@dataclass(frozen=True)
class LineProblem:
    """A line that was skipped, with the reason (shown as ``file:line: reason``)."""

    path: str
    line_no: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line_no}: {self.reason}: {self.text[:80]!r}"


@dataclass
class UrlList:
    """The parsed URL file: unique entries in file order, skipped lines and repeated lines."""

    entries: list[UrlEntry] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)
    repeats: list[tuple[int, str]] = field(default_factory=list)  # (line_no, video_id)

    @property
    def ids(self) -> list[str]:
        return [entry.video_id for entry in self.entries]

    def url_of(self) -> dict[str, str]:
        """Video id → the first URL that named it."""
        return {entry.video_id: entry.url for entry in self.entries}


def _host(netloc: str) -> str:
    host = netloc.rsplit("@", 1)[-1].split(":", 1)[0].lower()
    for prefix in ("www.", "m.", "music."):
        if host.startswith(prefix):
            host = host[len(prefix) :]
            break
    return host


def youtube_id(url: str) -> str | None:
    """The 11-character id for any YouTube URL form of one video, else None."""
    parts = urlsplit(url)
    host = _host(parts.netloc)
    segments = [s for s in parts.path.split("/") if s]
    candidate = None
    if host == "youtu.be" and segments:
        candidate = segments[0]
    elif host in _YOUTUBE_HOSTS:
        if segments[:1] == ["watch"] or not segments:
            candidate = dict(parse_qsl(parts.query)).get("v")
        elif len(segments) >= 2 and segments[0] in _YOUTUBE_PATH_PREFIXES:
            candidate = segments[1]
    # fullmatch: `$` in match() also accepts a trailing newline (``?v=<id>%0A``)
    if candidate and _YOUTUBE_ID.fullmatch(candidate) and candidate != "videoseries":
        return candidate  # (``/embed/videoseries?list=…`` is a playlist, not a video)
    return None


def normalise_url(url: str) -> str:
    """Canonical form for hashing: lower-case scheme/host, no default port, fragment or
    empty query values, query keys sorted."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    netloc = parts.netloc.lower()
    default_port = {"http": ":80", "https": ":443"}.get(scheme)
    if default_port and netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=False)))
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, query, ""))


def generic_id(url: str) -> str:
    """``<slug>-<10 hex>`` derived from the normalised URL; filesystem-safe and deterministic."""
    normal = normalise_url(url)
    digest = hashlib.sha256(normal.encode()).hexdigest()[:10]
    last = urlsplit(normal).path.rstrip("/").rsplit("/", 1)[-1]
    slug = _SLUG_UNSAFE.sub("_", last.rsplit(".", 1)[0]).strip("_")[:24]
    return f"{slug}-{digest}" if slug else f"url-{digest}"


def video_id(url: str) -> str:
    """The stable id of the video a URL names (no network)."""
    return youtube_id(url) or generic_id(url)


def check_url(text: str) -> str | None:
    """Why ``text`` is not an acceptable URL line, or None when it is."""
    if _CONTROL.search(text):
        return "contains control characters"
    if text.startswith("-"):
        return "looks like a command-line option, not a URL"
    if any(ch.isspace() for ch in text):
        return "contains whitespace; put one URL per line"
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        return "not an http(s) URL"
    try:
        port = parts.port
    except ValueError:
        return "has an invalid port"
    if not parts.hostname or port == 0:
        return "has no host"
    return None


def parse_lines(lines: list[str], source: str = "<urls>") -> UrlList:
    """Parse URL-file lines: skip blanks and ``#`` comments, trim, validate, de-duplicate by id."""
    result = UrlList()
    seen: set[str] = set()
    for line_no, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        reason = check_url(text)
        if reason:
            result.problems.append(LineProblem(source, line_no, text, reason))
            continue
        vid = video_id(text)
        if vid in seen:
            result.repeats.append((line_no, vid))
            continue
        seen.add(vid)
        result.entries.append(UrlEntry(text, vid, line_no))
    return result


class UrlFileMissing(FileNotFoundError):
    """The configured URL file does not exist."""

    def __init__(self, path: Path):
        super().__init__(
            f"URL file {str(path)!r} does not exist: create it (one URL per line) or point "
            "`urls:` in config/config.yaml (or --config urls=FILE) at the right file"
        )
        self.path = path


def read_url_file(path: str | Path) -> UrlList:
    """Parse the URL file at ``path``; raises UrlFileMissing when there is no such file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")  # -sig: drop a BOM
    except FileNotFoundError:
        raise UrlFileMissing(path) from None
    return parse_lines(text.split("\n"), source=str(path))
