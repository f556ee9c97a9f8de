"""Reading images and label maps, writing label maps and RGB images.

:func:`read_image` turns any PNG, JPEG, TIFF, BMP, WebP or GIF file into a
:class:`LoadedImage`: an ``H x W x 3`` ``uint8`` array for the model and the
screen, plus the file's faithful values (16-bit, float, alpha, palette indices)
in ``raw``. EXIF orientation is applied to both. Every failure raises an
:class:`~segstudio.core.errors.ImageReadError` subclass whose message names the
file and says what is wrong.

The modules, by job:

- :mod:`.listing`: the images in a folder (:data:`IMAGE_SUFFIXES`, natural order).
- :mod:`.decode`: :func:`read_image`, :class:`LoadedImage`, :func:`read_thumbnail`;
  tells the format from the file's contents and hands it to a decoder.
- :mod:`.decoded`: what decoders hand back, the header check of the pixel limit.
- :mod:`.limits`: the pixel limit, :func:`pixel_limit`: derived from the memory
  available, or set by the environment variable ``SEGSTUDIO_MAX_PIXELS``.
- :mod:`.pillow`: PNG, JPEG, BMP, WebP, GIF through Pillow (OpenCV for plain JPEG
  and 16-bit colour PNG); animated files give their first frame.
- :mod:`.tiff`: TIFF through tifffile (pages, planar data, two channels).
- :mod:`.bands`: :func:`open_bands`, a large tiled or striped TIFF a band of rows
  at a time (prediction that streams).
- :mod:`.exif`: the orientation tag, and turning pixels upright.
- :mod:`.tone`: 16-bit, float, two-channel ... data to the 8-bit ``rgb``.
- :mod:`.labelmaps`: ``uint8`` label maps in and out, RGB PNGs out.

Import from here (``segstudio.io.images``); the modules are its inner layout.
"""

from __future__ import annotations

from segstudio.io.images.bands import TiffBands, open_bands
from segstudio.io.images.decode import LoadedImage, read_image, read_thumbnail
from segstudio.io.images.labelmaps import (
    encode_label_map,
    read_label_map,
    write_label_map,
    write_rgb,
)
from segstudio.io.images.limits import MAX_PIXELS_ENV, pixel_limit, too_large
from segstudio.io.images.listing import IMAGE_SUFFIXES, list_images, natural_key

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS_ENV",
    "LoadedImage",
    "TiffBands",
    "encode_label_map",
    "list_images",
    "natural_key",
    "open_bands",
    "pixel_limit",
    "read_image",
    "read_label_map",
    "read_thumbnail",
    "too_large",
    "write_label_map",
    "write_rgb",
]
