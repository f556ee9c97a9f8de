"""SegStudio: pixel-accurate semantic-segmentation labelling with a model in the loop."""

from segstudio.core.errors import SegStudioError

__version__ = "0.1.0"

__all__ = ["SegStudioError", "__version__"]
