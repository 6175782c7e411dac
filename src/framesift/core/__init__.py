"""Foundations every layer shares: settings and config, the results layout, the stage table,
URLs, files, ffmpeg."""
