"""collapsekit: the open instrument for collapse in language models."""

__version__ = "0.1.0"
