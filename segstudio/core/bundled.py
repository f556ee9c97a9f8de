"""Where the model shipped with SegStudio lives (torch-free, so the window can ask).

The bundled model is a CamVid SegNet stored in the package's resources as
``camvid_segnet.safetensors``; a build without it (as during development,
before the model is trained) answers None and callers say so plainly.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

BUNDLED_MODEL_NAME = "camvid_segnet.safetensors"
#: Points at another file instead (tests, or a user's own default model).
BUNDLED_ENV = "SEGSTUDIO_BUNDLED_MODEL"


def bundled_model_path() -> Path | None:
    """The bundled model file, or None when this build has none."""
    override = os.environ.get(BUNDLED_ENV)
    if override:
        path = Path(override)
        return path if path.is_file() else None
    try:
        resource = importlib.resources.files("segstudio.resources") / BUNDLED_MODEL_NAME
    except ModuleNotFoundError:
        return None
    path = Path(str(resource))
    return path if path.is_file() else None
