"""Perceptual hashes: computing them, the per-video hash tables, near-duplicate search."""
