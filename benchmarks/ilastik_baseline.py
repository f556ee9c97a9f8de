"""The ilastik-style baseline of ``bench_loop.py``: a random forest on multiscale filters.

ilastik's pixel classifier computes, for each channel and several scales,
Gaussian smoothing, Laplacian of Gaussian, Gaussian gradient magnitude,
difference of Gaussians, and the eigenvalues of the structure tensor and of
the Hessian, and trains a random forest on the pixels the user painted.
This module does the same with OpenCV and scikit-learn (the colour channels
get the smoothing at every scale, the grey channel the edge and texture
filters), so the benchmark compares our learners with that classic on the
very same pixels.
"""

from __future__ import annotations

import numpy as np

#: ilastik's default scales (its 0.3 is left out: it is the raw pixel).
SIGMAS = (0.7, 1.0, 1.6, 3.5, 5.0, 10.0)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def _eig2(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of the symmetric 2x2 matrices [[a, b], [b, c]], larger first."""
    half_trace = (a + c) / 2
    root = np.sqrt(((a - c) / 2) ** 2 + b**2)
    return half_trace + root, half_trace - root


def filter_features(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, F)`` float32 features of an ``(H, W, 3)`` uint8 image."""
    import cv2

    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32) / 255.0
    grey = lab[..., 0]
    feats: list[np.ndarray] = [lab[..., i] for i in range(3)]
    for sigma in SIGMAS:
        smooth = _blur(lab, sigma)
        feats += [smooth[..., i] for i in range(3)]
        g = smooth[..., 0]
        gy, gx = np.gradient(g)
        feats.append(np.hypot(gx, gy))  # Gaussian gradient magnitude
        gyy, gyx = np.gradient(gy)
        _, gxx = np.gradient(gx)
        feats.append(gxx + gyy)  # Laplacian of Gaussian
        feats += list(_eig2(gxx, gyx, gyy))  # Hessian eigenvalues
        # structure tensor: the outer product of the gradient, smoothed at 2 sigma
        st = _blur(np.stack([gx * gx, gx * gy, gy * gy], -1), 2 * sigma)
        feats += list(_eig2(st[..., 0], st[..., 1], st[..., 2]))
        feats.append(g - _blur(grey, 1.6 * sigma))  # difference of Gaussians
    return np.stack(feats, -1).astype(np.float32)


class ForestLearner:
    """ilastik's recipe: filter features, a random forest of 100 trees on the labelled pixels.

    Parameters
    ----------
    num_classes : int
        Classes of the project.
    per_image : int
        Labelled pixels kept per image (a stratified sample, so a small class is
        never left out), the same budget our live learner uses.
    """

    def __init__(self, num_classes: int, per_image: int = 4000, seed: int = 0) -> None:
        self.num_classes = num_classes
        self.per_image = per_image
        self.rng = np.random.default_rng(seed)
        self.samples: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.forest = None
        self.seed = seed

    def add(self, name: str, rgb: np.ndarray, labels: np.ndarray) -> None:
        ys, xs = np.nonzero(labels < self.num_classes)
        if len(ys) == 0:
            return
        take = self.rng.choice(len(ys), min(self.per_image, len(ys)), replace=False)
        feats = filter_features(rgb)[ys[take], xs[take]]
        self.samples[name] = (feats, labels[ys[take], xs[take]])

    def fit(self) -> None:
        from sklearn.ensemble import RandomForestClassifier

        x = np.concatenate([f for f, _ in self.samples.values()])
        y = np.concatenate([c for _, c in self.samples.values()])
        self.forest = RandomForestClassifier(
            n_estimators=100, n_jobs=-1, random_state=self.seed, min_samples_leaf=2
        ).fit(x, y)

    def predict(self, rgb: np.ndarray) -> np.ndarray | None:
        if self.forest is None:
            return None
        feats = filter_features(rgb)
        h, w = rgb.shape[:2]
        proba = self.forest.predict_proba(feats.reshape(h * w, -1))
        classes = self.forest.classes_.astype(np.uint8)
        return classes[proba.argmax(1)].reshape(h, w)
