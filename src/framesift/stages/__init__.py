"""The per-video stages: download (yt-dlp), frames (ffmpeg), filter (a client of the detection
worker)."""
