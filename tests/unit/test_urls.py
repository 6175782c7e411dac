"""URL-file parsing and video ids (framesift.core.urls): pure functions, no network."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from framesift.core.urls import (
    VIDEO_ID_PATTERN,
    LineProblem,
    UrlFileMissing,
    check_url,
    generic_id,
    parse_lines,
    read_url_file,
    video_id,
    youtube_id,
)

YT = "dQw4w9WgXcQ"
YOUTUBE_FORMS = [
    f"https://www.youtube.com/watch?v={YT}",
    f"http://www.youtube.com/watch?v={YT}",
    f"https://youtube.com/watch?v={YT}",
    f"https://m.youtube.com/watch?v={YT}",
    f"https://music.youtube.com/watch?v={YT}",
    f"https://WWW.YouTube.com/watch?v={YT}",
    f"https://www.youtube.com/watch?v={YT}&t=42s&list=PLx0123456789",
    f"https://www.youtube.com/watch?feature=share&v={YT}&t=42s",
    f"https://www.youtube.com/watch?v={YT}#t=10",
    f"https://www.youtube.com:443/watch?v={YT}",
    f"https://youtu.be/{YT}",
    f"http://youtu.be/{YT}?t=3",
    f"https://youtu.be/{YT}?si=abcDEF&t=42",
    f"https://www.youtube.com/shorts/{YT}",
    f"https://m.youtube.com/shorts/{YT}?feature=share",
    f"https://www.youtube.com/embed/{YT}",
    f"https://www.youtube.com/embed/{YT}?start=5&autoplay=1",
    f"https://www.youtube-nocookie.com/embed/{YT}",
    f"https://www.youtube.com/live/{YT}",
    f"https://youtube.com/live/{YT}?feature=share",
    f"https://www.youtube.com/v/{YT}",
]


def _valid_id(vid: str) -> bool:
    return re.fullmatch(VIDEO_ID_PATTERN, vid) is not None


@pytest.mark.parametrize("url", YOUTUBE_FORMS)
def test_every_youtube_form_gives_the_11_char_id(url: str) -> None:
    assert check_url(url) is None
    assert youtube_id(url) == YT
    assert video_id(url) == YT


def test_our_youtube_ids_agree_with_yt_dlp_offline() -> None:
    """yt-dlp's own YouTube extractor (no network) derives the same id from every form."""
    from yt_dlp.extractor.youtube import YoutubeIE

    for url in YOUTUBE_FORMS:
        if YoutubeIE.suitable(url):
            assert YoutubeIE.get_temp_id(url) == video_id(url), url


@pytest.mark.parametrize(
    "url",
    [
        f"https://www.youtube.com/watch?v={YT}%0A",  # `re.match` + `$` would keep the newline
        f"https://www.youtube.com/watch?v={YT}x",  # 12 characters
        "https://www.youtube.com/watch?v=short",
        "https://www.youtube.com/embed/videoseries?list=PLx0123456789",  # a playlist
        "https://www.youtube.com/@somechannel",
        f"https://youtube.com.evil.example/watch?v={YT}",
        f"https://notyoutube.com/watch?v={YT}",
        f"https://example.com/watch?v={YT}",
    ],
)
def test_non_video_or_foreign_youtube_lookalikes_get_generic_ids(url: str) -> None:
    assert youtube_id(url) is None
    vid = video_id(url)
    assert vid != YT
    assert _valid_id(vid)


def test_same_youtube_video_on_several_lines_is_processed_once() -> None:
    lines = [
        f"https://www.youtube.com/watch?v={YT}",
        f"https://youtu.be/{YT}",
        f"https://www.youtube.com/shorts/{YT}?feature=share",
        "https://youtu.be/aaaaaaaaaaa",
    ]
    parsed = parse_lines(lines, source="urls.txt")
    assert parsed.ids == [YT, "aaaaaaaaaaa"]
    assert parsed.entries[0].url == lines[0]  # the first line naming a video wins
    assert parsed.entries[0].line_no == 1
    assert parsed.repeats == [(2, YT), (3, YT)]
    assert parsed.problems == []
    assert parsed.url_of() == {YT: lines[0], "aaaaaaaaaaa": lines[3]}


def test_generic_ids_are_deterministic_and_filesystem_safe() -> None:
    urls = [
        "http://127.0.0.1:8000/clips/alpha.mp4",
        "https://cdn.example.com/v/some%20clip%E2%80%94final.webm?token=abc",
        "https://example.com/",
        "https://example.com",
        "https://example.com/vidéo-été.mp4",
        "https://example.com/" + "x" * 300 + ".mp4",
        "https://example.com/$(id)`id`;|&.mp4",
        "https://example.com/..%2F..%2Fetc%2Fpasswd",
        "https://example.com/-rf.mp4",
    ]
    for url in urls:
        vid = video_id(url)
        assert vid == video_id(url) == generic_id(url)
        assert _valid_id(vid), vid
        assert not vid.startswith("-") and not vid.startswith(".")
        assert "/" not in vid and ".." not in vid
    assert len({video_id(url) for url in urls}) == len(urls) - 1  # only the two roots agree
    assert video_id("http://127.0.0.1:8000/clips/alpha.mp4").startswith("alpha-")


def test_different_urls_get_different_ids() -> None:
    urls = [
        "http://h.example/x.mp4",
        "http://h.example/sub/x.mp4",  # same stem, different path (yt-dlp would call both "x")
        "http://other.example/x.mp4",
        "http://h.example:8080/x.mp4",
        "http://h.example/x.mp4?token=1",
        "http://h.example/x.mp4?token=2",
        "http://h.example/x.webm",
        "http://h.example/X.mp4",  # paths are case-sensitive
    ]
    ids = [video_id(url) for url in urls]
    assert len(set(ids)) == len(urls), ids


@pytest.mark.parametrize(
    "variant",
    [
        "http://h.example/a/x.mp4?b=2&a=1",  # query keys reordered
        "http://h.example:80/a/x.mp4?a=1&b=2",  # default port
        "http://h.example/a/x.mp4?a=1&b=2#t=30",  # fragment
        "HTTP://H.Example/a/x.mp4?a=1&b=2",  # scheme and host case
        "http://h.example/a/x.mp4?a=1&b=2&c=",  # empty query value
    ],
)
def test_equivalent_generic_urls_share_an_id(variant: str) -> None:
    assert video_id(variant) == video_id("http://h.example/a/x.mp4?a=1&b=2")


def test_https_default_port_is_ignored_but_scheme_is_not() -> None:
    assert video_id("https://h.example:443/x.mp4") == video_id("https://h.example/x.mp4")
    assert video_id("https://h.example/x.mp4") != video_id("http://h.example/x.mp4")


def test_comments_blank_lines_and_whitespace() -> None:
    lines = [
        "# my videos",
        "",
        "   ",
        "\thttp://h.example/a.mp4   ",
        "  # indented comment http://h.example/c.mp4",
        "http://h.example/b.mp4\r",
        "",
    ]
    parsed = parse_lines(lines, source="urls.txt")
    assert [e.url for e in parsed.entries] == ["http://h.example/a.mp4", "http://h.example/b.mp4"]
    assert [e.line_no for e in parsed.entries] == [4, 6]
    assert parsed.problems == [] and parsed.repeats == []


def test_duplicate_generic_url_lines_are_processed_once() -> None:
    parsed = parse_lines(
        ["http://h.example/a.mp4", "http://h.example:80/a.mp4#x", "http://h.example/a.mp4"]
    )
    assert len(parsed.entries) == 1
    assert [line for line, _ in parsed.repeats] == [2, 3]


MALFORMED = {
    "ftp://h.example/x.mp4": "not an http(s) URL",
    "/home/me/videos/x.mp4": "not an http(s) URL",
    "h.example/x.mp4": "not an http(s) URL",
    "file:///etc/passwd": "not an http(s) URL",
    "javascript:alert(1)": "not an http(s) URL",
    "http://h.example/x\x07.mp4": "control characters",
    "http://h.example/x\x1b[31m.mp4": "control characters",
    "-o /tmp/evil": "command-line option",
    "--exec=touch${IFS}pwned": "command-line option",
    "http://": "has no host",
    "http:///x.mp4": "has no host",
    "https://:443/x.mp4": "has no host",
    "http://h.example:99999/x.mp4": "invalid port",
    "http://h.example/my video.mp4": "whitespace",
    "http://h.example/x.mp4;rm -rf ~": "whitespace",
    "http://h.example/a.mp4 http://h.example/b.mp4": "whitespace",
}


def test_malformed_lines_become_problems_with_file_and_line() -> None:
    lines = ["http://h.example/ok.mp4", *MALFORMED]
    parsed = parse_lines(lines, source="config/urls.txt")
    assert [e.url for e in parsed.entries] == ["http://h.example/ok.mp4"]
    assert len(parsed.problems) == len(MALFORMED)
    for line_no, (problem, (text, reason)) in enumerate(
        zip(parsed.problems, MALFORMED.items(), strict=True), start=2
    ):
        assert isinstance(problem, LineProblem)
        assert problem.line_no == line_no
        assert reason in problem.reason, (text, problem.reason)
        shown = str(problem)
        assert shown.startswith(f"config/urls.txt:{line_no}: ")
        assert "\x07" not in shown and "\x1b" not in shown  # shown with repr(): one safe line


@pytest.mark.parametrize(
    "url",
    [
        "http://h.example/x.mp4;rm%20-rf%20~",
        "http://h.example/$(touch${IFS}pwned).mp4",
        "http://h.example/x.mp4?q=`id`&r=a|b",
        "http://h.example/x.mp4?a=1&b='2'\"",
    ],
)
def test_shell_metacharacters_without_spaces_are_valid_urls_passed_through(url: str) -> None:
    """A URL is data: it is kept verbatim (the workflow never hands it to a shell)."""
    parsed = parse_lines([url])
    assert parsed.problems == []
    assert parsed.entries[0].url == url
    assert _valid_id(parsed.entries[0].video_id)


def test_read_url_file(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_bytes(
        b"\xef\xbb\xbfhttp://h.example/a.mp4\r\n"  # a BOM (Windows editors) on line 1
        b"# comment\r\n"
        b"ftp://h.example/b.mp4\r\n"
        b"https://youtu.be/dQw4w9WgXcQ\r\n"
        b"https://www.youtube.com/watch?v=dQw4w9WgXcQ\r\n"
        b"http://h.example/\xff\xfe.mp4\r\n"  # not UTF-8: replaced, still a usable line
    )
    parsed = read_url_file(path)
    assert [e.line_no for e in parsed.entries] == [1, 4, 6]
    assert parsed.entries[0].url == "http://h.example/a.mp4"
    assert parsed.entries[1].video_id == YT
    assert all(_valid_id(vid) for vid in parsed.ids)
    assert [str(p).split(": ")[0] for p in parsed.problems] == [f"{path}:3"]
    assert parsed.repeats == [(5, YT)]


def test_missing_url_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(UrlFileMissing) as caught:
        read_url_file(missing)
    message = str(caught.value)
    assert str(missing) in message and "\n" not in message
    assert "urls:" in message  # says what to do


def test_empty_url_file_is_an_empty_list(tmp_path: Path) -> None:
    empty = tmp_path / "urls.txt"
    empty.write_text("# nothing yet\n\n")
    parsed = read_url_file(empty)
    assert parsed.entries == [] and parsed.problems == [] and parsed.ids == []
