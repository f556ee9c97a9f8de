"""Finding the images in a folder: which suffixes count, and natural name order."""

from __future__ import annotations

import os
import re
from pathlib import Path

from segstudio.core.errors import ImageNotFoundError, ImageReadError

__all__ = ["IMAGE_SUFFIXES", "list_images", "natural_key"]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
"""File suffixes :func:`list_images` picks up (compared case-insensitively)."""


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """List the image files directly inside ``folder``, in natural order.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to list (not recursed into).

    Returns
    -------
    list of Path
        Files whose suffix is in :data:`IMAGE_SUFFIXES` (any case), hidden files
        (name starting with ``.``) left out, sorted naturally by name
        (``img2.png`` before ``img10.png``).

    Raises
    ------
    ImageNotFoundError
        ``folder`` does not exist.
    ImageReadError
        ``folder`` is a file, or cannot be listed.
    """
    root = Path(folder)
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        raise ImageNotFoundError(root, "no such folder") from None
    except NotADirectoryError:
        raise ImageReadError(root, "is a file, not a folder of images") from None
    except PermissionError:
        raise ImageReadError(root, "permission denied: cannot list this folder") from None
    except OSError as exc:
        raise ImageReadError(root, f"cannot list this folder ({exc.strerror or exc})") from None
    images = [
        p
        for p in entries
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    images.sort(key=lambda p: natural_key(p.name))
    return images


def natural_key(name: str) -> tuple[list[str | int], str]:
    """Sort key that puts ``img2`` before ``img10``.

    ``re.split`` with a group alternates text and digit runs, so odd positions
    are numbers (``int`` reads any Unicode decimal digits that ``\\d`` matched).
    """
    parts = re.split(r"(\d+)", name)
    key: list[str | int] = [int(tok) if i % 2 else tok.casefold() for i, tok in enumerate(parts)]
    return key, name
