"""YOLO detection: the model, the shared detection worker, its client, and who owns a run's
workers."""
