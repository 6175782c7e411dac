"""framesift: video URLs in, a de-duplicated, labelled image dataset out."""

__version__ = "0.1.0"
