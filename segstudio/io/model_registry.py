"""Moved to :mod:`segstudio.io.project.models`; this name is kept for the GUI's imports."""

from segstudio.io.project.models import *  # noqa: F403
from segstudio.io.project.models import __all__  # noqa: F401
