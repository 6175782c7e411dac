"""The yt-dlp extractor for a URL, chosen as yt-dlp chooses it but without compiling every
extractor's URL pattern (~0.5-1 CPU-s in every download job, which is a fresh process).

yt-dlp gives a URL to the first extractor, in its fixed order (YouTube first, Generic last),
whose ``suitable(url)`` is true; the default ``suitable`` compiles the class's ``_VALID_URL``.
For a URL no site extractor takes, that compiles all of them. Read as text, a pattern says what
every string it matches contains: a concatenation contains each run of literal characters
outside its groups and what each group that is not optional contains; an alternation contains
what one of its branches does. When the URL fails that, ``suitable`` is provably false and
nothing is compiled (reading all patterns: ~0.07 s). What this reader does not follow
(extractors with their own ``suitable``, conditionals, comments, verbose mode switched inside a
pattern, long escapes, unclosed classes) is compiled and asked as usual, so the choice is always
the one yt-dlp makes. tests/unit/test_download.py checks it against every extractor's own test URLs.

This reads yt-dlp internals (``YoutubeDL._ies``, ``_VALID_URL``, ``_ENABLED``), which have no
stability promise, and yt-dlp has no upper bound (YouTube needs current releases). So every
reading is guarded: where a release renames one, this module steps aside (``first_suitable``
gives None and ``new_downloader`` a plain ``YoutubeDL``), and yt-dlp chooses as it always does;
only the speed-up is lost.
"""

from __future__ import annotations

import re
import sys
from typing import Any

_GLOBAL_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")
_UNREAD = re.compile(r"\\[0-9NUux]|\(\?[#(]|\(\?[-aiLmsux]*x[-aiLmsux]*:|\(\?[aiLmsux]+\)")
_CLASS = r"\[\^?\]?(?:\\.|[^\]\\])*\]"
_VERBOSE_IGNORED = re.compile(rf"(\\.|{_CLASS})|[ \t\n\r\v\f]+|#[^\n]*", re.S)
_TOKENS = re.compile(  # escape, class, count, back-reference, group opener, text, any other
    rf"\\.|{_CLASS}|\{{\d*(?:,\d*)?\}}|\(\?P=\w+\)|\((?:\?(?:P<\w+>|[-aiLmsu]*:|>|=|!|<=|<!))?"
    r"|[^\\\[(){}|*+?.^$]+|.",
    re.S,
)
_ESCAPE_OR_CLASS = re.compile(rf"\\.|{_CLASS}", re.S)
_INNERMOST_GROUP = re.compile(r"\([^()]*\)")
_REPEATS = ("*", "+", "?")
_SPECIAL = frozenset("\\[{()|*+?.^$")  # what a token that is not literal text starts with
_CONSTRAINING = ("(", "(?:", "(?>")  # and named groups; not lookarounds or scoped flags


def _top_level_alternation(body: str) -> bool:
    """Whether ``body`` has a ``|`` outside every group (True too when its groups are odd)."""
    text = _ESCAPE_OR_CLASS.sub("_", body)
    while "(" in text:
        shorter = _INNERMOST_GROUP.sub("_", text)
        if shorter == text:
            return True
        text = shorter
    return "|" in text or ")" in text


def may_match(pattern: str, url: str) -> bool | None:
    """False when ``re.match(pattern, url)`` is provably None, read from the pattern's text
    alone; True when it may match; None when the pattern is not read. ``pattern`` is taken to
    be valid (yt-dlp's are): a broken one may be answered False instead of raising."""
    flags, start = "", 0
    while found := _GLOBAL_FLAGS.match(pattern, start):
        flags, start = flags + found.group(1), found.end()
    body = pattern[start:]
    ignore_case = "i" in flags
    if "L" in flags or _UNREAD.search(body):
        return None
    if ignore_case:
        if not (body.isascii() and url.isascii()):  # non-ASCII case folding: the re module's
            return None
        url = url.lower()
    if "x" in flags:
        body = _VERBOSE_IGNORED.sub(r"\1", body)
    alternation = "|" in body and _top_level_alternation(body)
    tokens = _TOKENS.findall(body)
    count = len(tokens)
    # per open group: (a finished branch held, this branch holds, the group constrains)
    stack: list[tuple[bool, bool, bool]] = []
    any_ok, branch_ok, run = False, True, ""
    i = 0
    while i < count:
        token = tokens[i]
        i += 1
        after = tokens[i] if i < count else ""
        repeated = after in _REPEATS or (after[:1] == "{" and len(after) > 1)
        if repeated:  # skip the repeat and a lazy or possessive mark
            i += 2 if i + 1 < count and tokens[i + 1] in _REPEATS else 1
        kind = token[0]
        if kind == "\\" and len(token) == 2 and not token[1].isalnum():
            token, kind = token[1], ""  # an escaped literal character
        literal = kind not in _SPECIAL
        if literal:
            if not repeated:
                run += token
                continue
            run += token[:-1]  # the repeated last character may be absent
        if run:
            if branch_ok and (run.lower() if ignore_case else run) not in url:
                branch_ok = False
                if not (alternation or stack):
                    return False
            run = ""
        if (
            literal
            or kind in ".^$"
            or (kind in "\\[" and len(token) > 1)
            or token.startswith("(?P=")
        ):
            continue  # no literal text: ., ^, $, \d, \b, ..., a class, a back-reference
        if kind == "(" and not repeated:
            constraining = token in _CONSTRAINING or token.startswith("(?P<")
            stack.append((any_ok, branch_ok, constraining))
            any_ok, branch_ok = False, True
        elif kind == ")" and stack:
            holds = any_ok or branch_ok
            any_ok, branch_ok, constraining = stack.pop()
            required = not repeated or after == "+"
            if after[:1] == "{":  # {m,...}: required when m > 0
                required = after[1:2] not in ("", ",", "0", "}")
            if constraining and required and not holds:
                branch_ok = False
                if not (alternation or stack):
                    return False
        elif kind == "|" and not repeated:
            any_ok, branch_ok = any_ok or branch_ok, True
        else:  # a lone [, {, \ or repeat, an unbalanced ): not read
            return None
    if stack:
        return None
    if run and branch_ok and (run.lower() if ignore_case else run) not in url:
        return any_ok
    return any_ok or branch_ok


def _default_url_matching() -> set[tuple[Any, Any]]:
    """yt-dlp's own (``suitable``, ``_match_valid_url``) pairs: the class's pattern decides."""
    from yt_dlp.extractor.common import InfoExtractor

    bases = [InfoExtractor]
    lazy = sys.modules.get("yt_dlp.extractor.lazy_extractors")  # loaded when yt-dlp uses them
    if lazy is not None and hasattr(lazy, "LazyLoadExtractor"):
        bases.append(lazy.LazyLoadExtractor)
    return {_url_methods(base) for base in bases}


def _url_methods(cls: Any) -> tuple[Any, Any]:
    """The functions behind a class's ``suitable`` and ``_match_valid_url`` (None: absent)."""
    suitable = getattr(getattr(cls, "suitable", None), "__func__", None)
    return suitable, getattr(getattr(cls, "_match_valid_url", None), "__func__", None)


def cannot_match(extractor: Any, url: str, defaults: set[tuple[Any, Any]]) -> bool:
    """True when ``extractor.suitable(url)`` is provably false without compiling its pattern."""
    cls = extractor if isinstance(extractor, type) else type(extractor)
    methods = _url_methods(cls)
    if None in methods or methods not in defaults:
        return False
    patterns = getattr(cls, "_VALID_URL", None)
    if isinstance(patterns, str):
        patterns = (patterns,)
    if not isinstance(patterns, tuple | list) or not patterns:
        return False
    return all(
        isinstance(pattern, str) and may_match(pattern, url) is False for pattern in patterns
    )


def first_suitable(ydl: Any, url: str) -> str | None:
    """The key of the extractor that ``ydl.extract_info(url)`` would use (None: none would)."""
    extractors = getattr(ydl, "_ies", None)
    if not isinstance(extractors, dict):
        return None  # yt-dlp's internals moved: let it choose itself
    defaults = _default_url_matching()
    for key, extractor in extractors.items():
        if not cannot_match(extractor, url, defaults) and extractor.suitable(url):
            return key
    return None


def new_downloader(params: dict[str, Any]) -> Any:
    """``YoutubeDL(params)`` with the default extractors, registered as yt-dlp does (in its
    order, enabled ones) but without its quadratic de-duplication of ~1,800 names (~0.1 s)."""
    from yt_dlp import YoutubeDL
    from yt_dlp.extractor import gen_extractor_classes

    classes = {ie.IE_NAME.lower(): ie for ie in gen_extractor_classes()}.values()
    readable = all(isinstance(getattr(ie, "_ENABLED", None), bool) for ie in classes)
    if "allowed_extractors" in params or params.get("verbose") or not readable:
        return YoutubeDL(params)
    ydl = YoutubeDL(params, auto_init=False)  # auto_init: the extractors; a header if verbose
    for extractor in classes:
        if extractor._ENABLED:
            ydl.add_info_extractor(extractor)
    return ydl
