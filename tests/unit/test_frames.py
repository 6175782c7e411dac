"""Frame extraction (framesift.stages.frames) on small videos rendered by the real ffmpeg."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framesift.cli.synthetic import VideoSpec, make_video, write_corrupt_video
from framesift.core.config import settings_for
from framesift.core.media import ffmpeg_binary
from framesift.core.settings import FrameSettings
from framesift.stages.frames import (
    MANIFEST,
    ExtractionFailed,
    extract_frames,
    frame_name,
    interval_times,
    probe_duration,
    read_manifest,
    write_empty,
)

SIZE = "160x90"
RATE = 10  # frames per second of every clip here: one frame = 100 ms


def frame_settings(**frames) -> FrameSettings:
    """The schema's ``frames`` defaults with ``frames`` over them (unchecked: tests may pass
    values the schema would refuse)."""
    return replace(settings_for().frames, **frames)


def _ffmpeg(*args: str) -> None:
    base = [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run([*base, *args], check=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    # 3 s testsrc2 (make_video's GOP is 2 s: keyframes at 0 and 2 s)
    three = make_video(root / "three.mp4", VideoSpec(duration=3.0, width=160, height=90, fps=RATE))
    # a known GOP of 4 frames (400 ms), no extra keyframes at scene changes
    gop = root / "gop.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={RATE}:duration=3",
        "-c:v", "libx264", "-pix_fmt", "yuv420p",
        "-g", "4", "-keyint_min", "4", "-sc_threshold", "0", str(gop),
    )  # fmt: skip
    # hard cuts between flat colours of clearly different brightness at 1.0, 1.7 and 3.0 s
    segments = [("black", 1.0), ("white", 0.7), ("gray", 1.3), ("navy", 0.5)]
    inputs: list[str] = []
    for colour, seconds in segments:
        inputs += ["-f", "lavfi", "-i", f"color=c={colour}:size={SIZE}:rate={RATE}:d={seconds}"]
    graph = "".join(f"[{i}:v]" for i in range(len(segments)))
    graph += f"concat=n={len(segments)}:v=1:a=0[v]"
    scene = root / "scene.mp4"
    _ffmpeg(*inputs, "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", str(scene))  # fmt: skip
    corrupt = write_corrupt_video(root / "corrupt.mp4")
    html = root / "page.mp4"  # what a download of a web page would leave
    html.write_text("<!doctype html><html><body>not a video</body></html>\n")
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    return {
        "three": three,
        "gop": gop,
        "scene": scene,
        "corrupt": corrupt,
        "html": html,
        "empty": empty,
    }


@pytest.fixture(scope="module")
def every_frame(clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """Every frame of the 3 s clip by its start time in ms (fps mode at the clip's own rate)."""
    out = tmp_path_factory.mktemp("every") / "frames"
    frames = extract_frames(clips["three"], "vid", out, frame_settings(fps=float(RATE)))
    assert [f.timestamp_ms for f in frames] == list(range(0, 3000, 100))
    return {f.timestamp_ms: _grey(out / f.file) for f in frames}


def _extract(video: Path, out: Path, **options) -> list[int]:
    frames = extract_frames(video, "vid", out, frame_settings(**options))
    return [f.timestamp_ms for f in frames]


def _grey(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32)


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_probe_duration(clips: dict[str, Path]) -> None:
    assert probe_duration(clips["three"]) == pytest.approx(3.0, abs=0.05)
    assert probe_duration(clips["scene"]) == pytest.approx(3.5, abs=0.05)


def test_fps_mode(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    assert _extract(clips["three"], out, mode="fps", fps=2.0) == list(range(0, 3000, 500))
    assert _extract(clips["three"], out, mode="fps", fps=1.0) == [0, 1000, 2000]
    assert _extract(clips["three"], out, mode="fps", fps=10.0) == list(range(0, 3000, 100))


def test_interval_mode(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    assert _extract(clips["three"], out, mode="interval", interval=1.0) == [0, 1000, 2000]
    assert _extract(clips["three"], out, mode="interval", interval=0.7) == [
        0,
        700,
        1400,
        2100,
        2800,
    ]
    assert _extract(clips["three"], out, mode="interval", interval=60.0) == [0]
    assert interval_times(3.0, 1.0, 0) == [0.0, 1.0, 2.0]
    assert interval_times(3.0, 0.5, 2) == [0.0, 0.5]


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "fps", "fps": 1.0},
        {"mode": "fps", "fps": 2.0},
        {"mode": "fps", "fps": 3.0},
        {"mode": "fps", "fps": 0.7},
        {"mode": "interval", "interval": 0.7},
        {"mode": "keyframes"},
    ],
    ids=lambda o: "-".join(str(v) for v in o.values()),
)
def test_each_picture_is_the_frame_on_screen_at_its_timestamp(
    clips: dict[str, Path], every_frame: dict[int, np.ndarray], tmp_path: Path, options: dict
) -> None:
    """The timestamp in a file name is the moment its picture shows (testsrc2 moves every
    frame, so a neighbouring frame is clearly different)."""
    reference = every_frame
    out = tmp_path / "frames"
    frames = extract_frames(clips["three"], "vid", out, frame_settings(**options))
    for frame in frames:
        picture = _grey(out / frame.file)
        distance, shown = min((np.abs(picture - ref).mean(), t) for t, ref in reference.items())
        on_screen = frame.timestamp_ms // 100 * 100  # the last frame starting at or before it
        assert (shown, frame.timestamp_ms) == (on_screen, frame.timestamp_ms)
        assert distance < 1.0


def test_keyframes_mode_follows_the_gop(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    gop_ms = 4 * 1000 // RATE
    assert _extract(clips["gop"], out, mode="keyframes") == list(range(0, 3000, gop_ms))
    # make_video encodes with a GOP of 2 s
    assert _extract(clips["three"], out, mode="keyframes") == [0, 2000]


def test_scene_mode_takes_frame_zero_and_each_cut(clips: dict[str, Path], tmp_path: Path) -> None:
    got = _extract(clips["scene"], tmp_path / "frames", mode="scene", scene_threshold=0.3)
    assert len(got) == 4 and got[0] == 0
    for actual, cut in zip(got[1:], [1000, 1700, 3000], strict=True):
        assert abs(actual - cut) <= 1000 // RATE, got  # within one frame of the cut


def test_scene_mode_with_a_threshold_above_every_cut_gives_only_frame_zero(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    assert _extract(clips["three"], tmp_path / "f", mode="scene", scene_threshold=1.0) == [0]


@pytest.mark.parametrize(
    ("mode", "extra", "expected"),
    [
        ("fps", {"fps": 10.0}, [0, 100, 200, 300, 400]),
        ("interval", {"interval": 0.5}, [0, 500, 1000, 1500, 2000]),
        ("keyframes", {}, [0, 400, 800, 1200, 1600]),
    ],
)
def test_max_frames(
    clips: dict[str, Path], tmp_path: Path, mode: str, extra: dict, expected: list[int]
) -> None:
    out = tmp_path / "frames"
    assert _extract(clips["gop"], out, mode=mode, max_frames=5, **extra) == expected
    assert len(list(out.glob("*.jpg"))) == 5


def test_max_frames_in_scene_mode(clips: dict[str, Path], tmp_path: Path) -> None:
    got = _extract(clips["scene"], tmp_path / "f", mode="scene", max_frames=2)
    assert len(got) == 2 and got[0] == 0 and abs(got[1] - 1000) <= 100


@pytest.mark.parametrize("mode", ["fps", "interval", "keyframes", "scene"])
def test_max_width_downscales_keeping_the_aspect(
    clips: dict[str, Path], tmp_path: Path, mode: str
) -> None:
    out = tmp_path / "frames"
    _extract(clips["three"], out, mode=mode, max_width=64, interval=1.0)
    sizes = {Image.open(p).size for p in out.glob("*.jpg")}
    assert sizes == {(64, 36)}


def test_max_width_never_upscales(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    _extract(clips["three"], out, mode="fps", max_width=1000)
    assert {Image.open(p).size for p in out.glob("*.jpg")} == {(160, 90)}


def test_manifest_and_file_names_match_the_files(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    frames = extract_frames(clips["three"], "my_vid-1", out, frame_settings(mode="fps", fps=2.0))
    assert read_manifest(out / MANIFEST) == frames
    listed = [f.file for f in frames]
    assert sorted(p.name for p in out.iterdir()) == sorted([*listed, MANIFEST])
    for frame in frames:
        assert frame.file == frame_name("my_vid-1", frame.timestamp_ms)
        assert re.fullmatch(r"my_vid-1_\d{9}\.jpg", frame.file)
        with Image.open(out / frame.file) as image:
            assert image.format == "JPEG"
    assert frame_name("v", 1500) == "v_000001500.jpg"
    header, *rows = (out / MANIFEST).read_text().splitlines()
    assert header == "file\ttimestamp_ms"
    assert rows[1] == "my_vid-1_000000500.jpg\t500"
    assert _leftovers(tmp_path) == []


def test_rerun_replaces_the_old_folder(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    _extract(clips["three"], out, mode="fps", fps=10.0)
    (out / "stray.txt").write_text("old")
    _extract(clips["three"], out, mode="fps", fps=1.0)
    assert sorted(p.name for p in out.glob("*")) == [
        MANIFEST,
        "vid_000000000.jpg",
        "vid_000001000.jpg",
        "vid_000002000.jpg",
    ]
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("bad", ["corrupt", "html", "empty"])
@pytest.mark.parametrize("mode", ["fps", "interval", "keyframes", "scene"])
def test_undecodable_input_raises_and_leaves_nothing(
    clips: dict[str, Path], tmp_path: Path, bad: str, mode: str
) -> None:
    out = tmp_path / "frames"
    with pytest.raises(ExtractionFailed) as failure:
        extract_frames(clips[bad], "vid", out, frame_settings(mode=mode))
    assert str(failure.value).strip()
    assert "\n" not in str(failure.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folders either


def test_failed_rerun_keeps_the_previous_frames(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "frames"
    before = _extract(clips["three"], out, mode="fps", fps=1.0)
    with pytest.raises(ExtractionFailed):
        extract_frames(clips["corrupt"], "vid", out, frame_settings())
    assert [f.timestamp_ms for f in read_manifest(out / MANIFEST)] == before
    assert _leftovers(tmp_path) == []


def test_unknown_mode_is_rejected(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bogus"):
        extract_frames(clips["three"], "vid", tmp_path / "f", frame_settings(mode="bogus"))
    assert list(tmp_path.iterdir()) == []


def test_write_empty_gives_a_header_only_manifest(tmp_path: Path) -> None:
    out = tmp_path / "frames"
    write_empty(out)
    assert [p.name for p in out.iterdir()] == [MANIFEST]
    assert read_manifest(out / MANIFEST) == []
    assert read_manifest(tmp_path / "missing.tsv") == []
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("mode", ["fps", "interval", "keyframes", "scene"])
def test_threads_bound_every_ffmpeg_input_output_and_filter_graph(
    mode: str, clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule's ``threads`` reach each ffmpeg process (decoder, filters, encoder); the frames
    are those of ffmpeg's default thread count."""
    import framesift.stages.frames as frames_module

    calls: list[list[str]] = []
    real_run = frames_module._run

    def recording(args: list[str], *rest, **kwargs) -> str:
        calls.append(args)
        return real_run(args, *rest, **kwargs)

    monkeypatch.setattr(frames_module, "_run", recording)
    settings = {"mode": mode, "interval": 1.0}
    default = extract_frames(clips["three"], "v", tmp_path / "a", frame_settings(**settings))
    assert calls and not any("-threads" in a or "-filter_threads" in a for a in calls)
    calls.clear()
    two = extract_frames(clips["three"], "v", tmp_path / "b", frame_settings(**settings), threads=2)
    assert two == default
    assert calls
    for args in calls:
        assert args[args.index("-filter_threads") + 1] == "2"
        settings_of = [args[i + 1] for i, a in enumerate(args) if a == "-threads"]
        # one per input (-i) and one per output (each has its -q:v)
        assert settings_of == ["2"] * (args.count("-i") + args.count("-q:v"))
