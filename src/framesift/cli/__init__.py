"""The framesift command: watch, status, retry-failed, workers, demo, doctor."""
