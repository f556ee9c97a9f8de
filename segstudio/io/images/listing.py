"""Finding the images in a folder: which suffixes count, and natural name order.

A file whose name is not valid UTF-8 (possible on Linux, where a name is any
bytes) is left out with a warning naming it: SegStudio stores image names as
text in its project database and in dataset lists, which such a name cannot be.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from segstudio.core.errors import ImageNotFoundError, ImageReadError

__all__ = ["IMAGE_SUFFIXES", "list_images", "natural_key", "valid_name"]

_log = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".bmp",
    ".webp",
    ".gif",
)
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
        (name starting with ``.``) and names that are not valid UTF-8 left out (the
        latter with a logged warning naming each), sorted naturally by name
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
    images = []
    for p in entries:
        if p.suffix.lower() not in IMAGE_SUFFIXES or p.name.startswith("."):
            continue
        if not valid_name(p.name):
            _log.warning(
                "%s: skipping the file %r: its name is not valid UTF-8 (rename it to open it)",
                root,
                os.fsencode(p.name),
            )
            continue
        if p.is_file():
            images.append(p)
    images.sort(key=lambda p: natural_key(p.name))
    return images


def valid_name(name: str) -> bool:
    """Whether a file name is valid UTF-8 text.

    Python gives undecodable bytes of a name as lone surrogates
    (``surrogateescape``); such a name cannot be stored as text.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def natural_key(name: str) -> tuple[list[str | int], str]:
    """Sort key that puts ``img2`` before ``img10``.

    ``re.split`` with a group alternates text and digit runs, so odd positions
    are numbers (``int`` reads any Unicode decimal digits that ``\\d`` matched).
    """
    parts = re.split(r"(\d+)", name)
    key: list[str | int] = [int(tok) if i % 2 else tok.casefold() for i, tok in enumerate(parts)]
    return key, name
