"""``framesift doctor``: the real command on small project directories (no mocks).

Set-ups that are not about the detector use ``filter.model: none``: with no detector, doctor
does not start torch (a few seconds per run), which keeps this file fast.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml
from testkit import SHAPES_MODEL

from framesift.cli.doctor import _cuda_index

GOOD = {"filter": {"model": str(SHAPES_MODEL), "classes": ["square"], "device": "cpu"}}
NO_DETECTOR = {"filter": {"model": "none"}}
LOCAL_URL = "http://127.0.0.1/x.mp4"
YOUTUBE_URL = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


def project(root: Path, config: dict, urls: list[str] | None = (LOCAL_URL,)) -> Path:
    """A project directory with config/config.yaml and (unless None) config/urls.txt."""
    (root / "config").mkdir(parents=True)
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    if urls is not None:
        (root / "config" / "urls.txt").write_text("\n".join(urls) + "\n")
    return root


def doctor(root: Path, *args: str, command: str = "doctor") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "framesift", command, "-d", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def line(output: str, pattern: str) -> str:
    """The one output line matching ``pattern`` (after its indentation)."""
    found = [text.strip() for text in output.splitlines() if re.match(pattern, text.strip())]
    assert len(found) == 1, f"{pattern!r}: {found}\n{output}"
    return found[0]


def fails(output: str) -> list[str]:
    return [text.strip() for text in output.splitlines() if text.strip().startswith("FAIL")]


def test_good_setup_passes(tmp_path):
    proc = doctor(project(tmp_path / "p", GOOD))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert fails(out) == []
    assert re.search(r"\d+\.\d+", line(out, r"ok\s+yt-dlp \d"))
    assert line(out, r"ok\s+JS runtime deno \d+\.\d+").endswith("deno)")
    assert "deno" in line(out, r"ok\s+JS challenge providers available:").split(": ")[1]
    assert line(out, r"ok\s+ffmpeg \S+ \(/")
    assert line(out, r"ok\s+H\.264 decoder") in (
        "ok    H.264 decoder h264",
        "ok    H.264 decoder libopenh264",
    )
    assert line(out, r"ok\s+filter\.model ").endswith(": square, circle")
    assert line(out, r"ok\s+filter\.classes") == "ok    filter.classes square"
    assert line(out, r"ok\s+worker device") == "ok    worker device cpu (filter.device)"
    assert line(out, r"ok\s+URL file").endswith("urls.txt: 1 video(s)")
    assert "writable" in line(out, r"(ok|warn)\s+results")  # warn: under 5 GiB free
    assert not (tmp_path / "p" / "results").exists()  # nothing permanent is created
    assert out.rstrip().splitlines()[-1].startswith("ready: nothing blocks a run")


def test_missing_model_files_fail_and_model_names_warn(tmp_path):
    root = project(
        tmp_path / "p",
        {
            "filter": {"model": "models/missing.pt", "device": "cuda:99"},
            "detect": {"model": "yolo-nano.pt"},
        },
    )
    proc = doctor(root)
    assert proc.returncode == 1
    path = line(proc.stdout, r"FAIL\s+filter\.model ")
    assert (
        f"models/missing.pt: no such file (looked for {root.resolve()}/models/missing.pt)" in path
    )
    assert "framesift:shapes" in path and "none" in path
    named = line(proc.stdout, r"warn\s+detect\.model ")  # a name ultralytics fetches online
    assert "yolo-nano.pt is not a local file" in named and "needs internet" in named
    device = line(proc.stdout, r"FAIL\s+worker device")
    assert "filter.device: cuda:99, but" in device and "set filter.device: auto" in device
    assert len(fails(proc.stdout)) == 2


def test_unknown_class_fails_naming_it(tmp_path):
    config = {"filter": {**GOOD["filter"], "classes": ["square", "giraffe"]}}
    proc = doctor(project(tmp_path / "p", config))
    assert proc.returncode == 1
    assert fails(proc.stdout) == [line(proc.stdout, r"FAIL\s+filter\.classes")]
    assert "unknown class(es) giraffe; this model knows: square, circle" in fails(proc.stdout)[0]


def test_missing_url_file_fails(tmp_path):
    root = project(tmp_path / "p", NO_DETECTOR, urls=None)
    proc = doctor(root)
    assert proc.returncode == 1
    assert fails(proc.stdout) == [line(proc.stdout, r"FAIL\s+URL file")]
    assert f"{root}/config/urls.txt does not exist: create it" in fails(proc.stdout)[0]
    assert line(proc.stdout, r"ok\s+filter\.model") == (
        "ok    filter.model none (no detector: every frame is kept)"
    )


def test_url_file_problems_warn(tmp_path):
    root = project(tmp_path / "p", NO_DETECTOR, urls=["# nothing yet", "ftp://example.com/a"])
    proc = doctor(root)
    assert proc.returncode == 0, proc.stdout
    assert line(proc.stdout, r"warn\s+URL file .*no video")
    skipped = line(proc.stdout, r"warn\s+URL file 1 line")
    assert "urls.txt:2: not an http(s) URL" in skipped


def test_js_runtime_that_does_not_exist_fails(tmp_path):
    config = {**NO_DETECTOR, "download": {"js_runtime": "/nonexistent/deno"}}
    proc = doctor(project(tmp_path / "p", config))
    assert proc.returncode == 1
    assert fails(proc.stdout) == [
        "FAIL  JS runtime download.js_runtime: '/nonexistent/deno' is not an executable file: "
        "fix the path, or set download.js_runtime: auto"
    ]


def test_no_js_runtime_fails_only_with_youtube_urls(tmp_path):
    config = {**NO_DETECTOR, "download": {"js_runtime": "none"}}
    proc = doctor(project(tmp_path / "yt", config, urls=[LOCAL_URL, YOUTUBE_URL]))
    assert proc.returncode == 1
    assert line(proc.stdout, r"warn\s+JS runtime").startswith("warn  JS runtime none (disabled)")
    youtube = line(proc.stdout, r"FAIL\s+JS challenge providers")
    assert "YouTube downloads will fail (1 YouTube URL(s))" in youtube
    assert "download.js_runtime: auto" in youtube
    assert line(proc.stdout, r"ok\s+URL file").endswith("2 video(s), 1 on YouTube")

    proc = doctor(project(tmp_path / "local", config))
    assert proc.returncode == 0
    assert "YouTube URLs would fail" in line(proc.stdout, r"warn\s+JS challenge providers")


def test_configfile_and_config_errors_as_in_status(tmp_path):
    root = project(tmp_path / "p", {**NO_DETECTOR, "urls": "absent.txt"})
    (root / "other.yaml").write_text(yaml.safe_dump({**NO_DETECTOR, "urls": "other.txt"}))
    (root / "other.txt").write_text(f"{YOUTUBE_URL}\n{LOCAL_URL}\n")
    for files in (["other.yaml"], ["config/config.yaml", "other.yaml"]):
        proc = doctor(root, "--configfile", *files)
        assert proc.returncode == 0, proc.stdout
        assert line(proc.stdout, r"ok\s+filter\.model none")
        assert line(proc.stdout, r"ok\s+URL file").endswith("other.txt: 2 video(s), 1 on YouTube")
    alone = doctor(root)  # config/config.yaml alone: its URL file does not exist
    assert alone.returncode == 1 and line(alone.stdout, r"FAIL\s+URL file .*absent\.txt")

    for args, error in (
        (["--configfile", "absent.yaml"], "config file '{root}/absent.yaml' does not exist"),
        (
            ["--configfile", "bad.yaml"],
            "config key filter.conf: 2 is greater than the maximum of 1",
        ),
    ):
        (root / "bad.yaml").write_text("filter: {conf: 2}\n")
        proc = doctor(root, *args)
        status = doctor(root, *args, command="status")
        assert (proc.returncode, proc.stdout) == (2, "")
        assert proc.stderr == f"framesift doctor: {error.format(root=root)}\n"
        assert status.stderr == proc.stderr.replace("doctor", "status")


def test_cuda_index():
    assert [_cuda_index(d) for d in ("cuda", "CUDA:1", "0", "0,2", "cpu", "mps", "auto")] == [
        0, 1, 0, 2, None, None, None,
    ]  # fmt: skip
