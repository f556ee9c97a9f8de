"""Training-time augmentation with numpy and OpenCV, driven by a seeded generator.

:func:`augment` draws one random geometric transform (scale, rotation,
horizontal flip and the crop position) and applies it to the image, the label
map and the weight map in ONE ``cv2.warpAffine`` each, straight into the crop:
bilinear for the image (reflected at the borders), nearest for labels and
weights, whose borders become unlabeled (255) and weight 0. Photometric
changes (brightness, contrast, saturation, blur, noise) touch the image only.

Every random number comes from the ``numpy.random.Generator`` passed in, in a
fixed order, so the same generator state gives the same result. Validation
uses no augmentation (the full image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from segstudio.core.labelset import UNLABELED

__all__ = ["LIGHT", "AugmentConfig", "augment", "crop_size", "preset"]


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly :func:`augment` changes an image.

    Attributes
    ----------
    scale : tuple of float
        Range of the random scale, drawn log-uniformly.
    rotation : float
        Largest rotation, degrees (either way).
    flip : bool
        Flip horizontally half of the time.
    jitter : float
        Brightness, contrast and saturation change by a factor in ``1 +- jitter``.
    jitter_p, blur_p, noise_p : float
        Probabilities of colour jitter, a Gaussian blur and Gaussian noise.
    blur_sigma, noise_sigma : tuple of float
        Ranges of the blur's sigma (pixels) and the noise's sigma (0..255 units).
    """

    scale: tuple[float, float] = (0.75, 1.5)
    rotation: float = 10.0
    flip: bool = True
    jitter: float = 0.25
    jitter_p: float = 0.8
    blur_p: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    noise_p: float = 0.2
    noise_sigma: tuple[float, float] = (2.0, 8.0)


DEFAULT = AugmentConfig()
#: For frames of one camera (a drive): the horizon and the scale of things hardly
#: change, so little scaling and rotation; flips and colour changes as usual.
LIGHT = AugmentConfig(scale=(0.9, 1.15), rotation=2.0)
_PRESETS = {"default": DEFAULT, "light": LIGHT}


def preset(name: str) -> AugmentConfig:
    """The strengths a recipe's ``augment`` names (``"default"`` or ``"light"``).

    Raises
    ------
    KeyError
        No such preset.
    """
    return _PRESETS[str(name)]


def crop_size(crop: int | tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` of a crop given as one side or as a pair."""
    if isinstance(crop, int):
        return crop, crop
    h, w = crop
    return int(h), int(w)


def _geometry(
    shape: tuple[int, int],
    out: tuple[int, int],
    rng: np.random.Generator,
    cfg: AugmentConfig,
    focus: tuple[float, float] | None = None,
) -> np.ndarray:
    """The 2x3 matrix from source pixels to crop pixels for one random draw; with
    ``focus`` (a source pixel ``(y, x)``) the crop is placed so that it holds it."""
    h, w = shape
    ch, cw = out
    lo, hi = cfg.scale
    s = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    angle = rng.uniform(-cfg.rotation, cfg.rotation) if cfg.rotation > 0 else 0.0
    flip = cfg.flip and rng.random() < 0.5
    sh, sw = h * s, w * s
    # Where the crop sits on the scaled image: inside it when the image is larger,
    # else the image sits somewhere inside the crop (the rest is padding).
    oy = rng.uniform(0.0, sh - ch) if sh >= ch else rng.uniform(sh - ch, 0.0)
    ox = rng.uniform(0.0, sw - cw) if sw >= cw else rng.uniform(sw - cw, 0.0)
    m = np.eye(3)
    if flip:
        m = np.array([[-1.0, 0.0, w], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ m
    # rotate and scale about the image centre (OpenCV: positive angle = counter-clockwise)
    rot = np.vstack([cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, s), [0.0, 0.0, 1.0]])
    m = rot @ m
    if focus is not None:
        # the crop offsets that keep the focus pixel inside, a random one of them
        fx, fy, _ = m @ np.array([focus[1] + 0.5, focus[0] + 0.5, 1.0])
        fy, fx = fy + sh / 2.0 - h / 2.0, fx + sw / 2.0 - w / 2.0
        oy = rng.uniform(fy - ch + 1.0, fy) if ch > 1 else fy
        ox = rng.uniform(fx - cw + 1.0, fx) if cw > 1 else fx
    # the scaled image's top-left corner to (0, 0), then the crop offset
    shift = np.array([[1.0, 0.0, sw / 2.0 - w / 2.0 - ox], [0.0, 1.0, sh / 2.0 - h / 2.0 - oy]])
    return shift @ m


def _photometric(rgb: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    jitter = rng.random() < cfg.jitter_p
    factors = rng.uniform(1.0 - cfg.jitter, 1.0 + cfg.jitter, size=3)
    blur = rng.random() < cfg.blur_p
    sigma = rng.uniform(*cfg.blur_sigma)
    noise = rng.random() < cfg.noise_p
    noise_sigma = rng.uniform(*cfg.noise_sigma)
    if not (jitter or blur or noise):
        return rgb
    img = rgb.astype(np.float32)
    if jitter:
        brightness, contrast, saturation = factors
        img *= brightness
        mean = float(img.mean())
        img = (img - mean) * contrast + mean
        gray = img @ np.array([0.299, 0.587, 0.114], np.float32)
        img = (img - gray[..., None]) * saturation + gray[..., None]
    if blur:
        img = np.asarray(cv2.GaussianBlur(img, (0, 0), sigma), np.float32)
    if noise:
        img += rng.normal(0.0, noise_sigma, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def augment(
    rgb: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None,
    rng: np.random.Generator,
    crop: int | tuple[int, int],
    config: AugmentConfig = DEFAULT,
    focus: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Randomly scale, rotate, flip, crop and recolour one training sample.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``H x W x 3`` ``uint8`` image.
    labels : numpy.ndarray
        ``H x W`` ``uint8`` label map (255 = unlabeled).
    weights : numpy.ndarray or None
        ``H x W`` per-pixel loss weights, or None.
    rng : numpy.random.Generator
        The source of every random choice.
    crop : int or tuple of int
        Output size, a side or ``(height, width)``. Where the transformed image
        does not cover the crop, the image is reflected, the labels are 255 and
        the weights 0.
    config : AugmentConfig
        Strengths and probabilities.
    focus : tuple of float, optional
        A source pixel ``(y, x)`` the crop must hold (class-balanced crops: a
        pixel of a rare class).

    Returns
    -------
    tuple
        ``(rgb, labels, weights)`` of the crop's size (weights None if None given).
    """
    ch, cw = crop_size(crop)
    m = _geometry(labels.shape[:2], (ch, cw), rng, config, focus)[:2]
    out_rgb = cv2.warpAffine(
        rgb, m, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    out_labels = cv2.warpAffine(
        labels,
        m,
        (cw, ch),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=UNLABELED,
    )
    out_weights = None
    if weights is not None:
        out_weights = cv2.warpAffine(
            weights.astype(np.float32, copy=False),
            m,
            (cw, ch),
            flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0.0,
        )
    return _photometric(out_rgb, rng, config), out_labels, out_weights
