"""Augmentation: seeded, labels kept aligned with the image, crops that keep a focus."""

from __future__ import annotations

import numpy as np

from segstudio.core.labelset import UNLABELED
from segstudio.training.augment import LIGHT, AugmentConfig, augment, preset
from tests.unit.training.toy import shape_image


def test_augment_with_a_focus_keeps_that_pixel_in_the_crop() -> None:
    labels = np.zeros((300, 400), np.uint8)
    labels[250:254, 10:14] = 1  # a small, rare object in a corner
    rgb = np.zeros((300, 400, 3), np.uint8)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        _, out, _ = augment(rgb, labels, None, rng, 64, focus=(251.0, 11.0))
        assert (out == 1).any(), seed


def test_augment_is_seeded_and_keeps_labels_aligned() -> None:
    rng = np.random.default_rng(0)
    rgb, labels = shape_image(rng)
    weights = np.where(labels == 1, np.float16(2), np.float16(1))
    out = augment(rgb, labels, weights, np.random.default_rng(5), (48, 40))
    again = augment(rgb, labels, weights, np.random.default_rng(5), (48, 40))
    assert out[0].shape == (48, 40, 3) and out[1].shape == (48, 40) and out[2] is not None
    for x, y in zip(out, again, strict=True):
        np.testing.assert_array_equal(x, y)
    assert set(np.unique(out[1])) <= {0, 1, 2, UNLABELED}
    valid = out[1] != UNLABELED
    np.testing.assert_array_equal(out[2][valid] == 2, out[1][valid] == 1)
    assert (out[2][~valid] == 0).all()
    big = augment(rgb, labels, None, np.random.default_rng(1), 200)  # larger than the image
    assert big[1].shape == (200, 200) and (big[1] == UNLABELED).mean() > 0.5 and big[2] is None


def test_the_light_preset_scales_and_rotates_less() -> None:
    """A centred square in a 200 x 200 image: its area in a full-size crop varies with
    the scale drawn, far less under the light preset."""
    labels = np.zeros((200, 200), np.uint8)
    labels[80:120, 80:120] = 1
    rgb = np.zeros((200, 200, 3), np.uint8)

    def areas(config: AugmentConfig) -> np.ndarray:
        out = []
        for seed in range(30):
            _, lab, _ = augment(rgb, labels, None, np.random.default_rng(seed), 400, config)
            out.append(int((lab == 1).sum()))
        return np.array(out) / 1600.0

    default, light = areas(preset("default")), areas(preset("light"))
    assert preset("light") is LIGHT and preset("default") == AugmentConfig()
    assert light.min() >= 0.9**2 * 0.9 and light.max() <= 1.15**2 * 1.1
    assert default.max() - default.min() > 2 * (light.max() - light.min())
