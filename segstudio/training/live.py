"""The live learner: retrains in seconds on every labelled pixel of a project.

ilastik and QuPath answer each stroke with a new pixel classifier; this does
the same with a deep network's features. A frozen SegNet (the bundled model,
or a SegNet the project made) is read at every scale
(:class:`~segstudio.model.live.LiveNet`), and a small head, one hidden layer
of ReLUs, learns the project's classes from the labelled pixels:

- **Samples**: for each labelled image (scribbles count, 255 is ignored) up to
  ``per_image`` labelled pixels, stratified by class so a thin class is never
  left out, each weighted by how many pixels of its class it stands for. Only
  their feature vectors are kept (float16), so retraining on every image of
  the project touches no image file and runs no network.
- **Fit**: Adam on the standardised features, warm-started from the last fit
  (the weights are kept in raw-feature units, so a new standardisation
  changes nothing), a fixed number of minibatches: a few seconds on a laptop
  CPU. Classes the base network knows by name start from its own scores, so
  the head learns corrections rather than starting over.
- **Replay**: a head fitted on a few labelled images unlearns what the base
  knew and those images do not show (a class they lack, a stretch of road
  unlike them). When the base knows every project class,
  :meth:`LiveLearner.add_replay` takes its sure answers on a few unlabelled
  images of the project as samples too (the window replays up to ten, spread
  over the project), so the head corrects the base rather than replacing it.
- **Model**: :meth:`LiveLearner.model` folds the standardisation into the
  first layer and returns an ordinary model file's content (architecture
  ``live``), which ``predict``, ``eval`` and the window load like any other.

The learner is plain Python and torch, used from a worker thread (the window)
or a command (``segstudio train --quick``); nothing here starts a thread.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from segstudio.core.errors import ModelFileError, TrainingError
from segstudio.core.labelset import UNLABELED, LabelSet
from segstudio.model.arch import ArchSpec
from segstudio.model.files import LoadedModel, ModelInfo, default_provenance
from segstudio.model.live import LiveNet, base_model, gather_taps
from segstudio.model.predictor import Prediction, Predictor, fold_batchnorm
from segstudio.training.live_config import FitReport, LiveConfig

__all__ = ["FitReport", "LiveConfig", "LiveLearner"]

log = logging.getLogger(__name__)

#: Images larger than this (either side) have their features read in tiles.
_TILE = 1024


@dataclass
class _Samples:
    feats: torch.Tensor  # (N, D) float16
    scores: torch.Tensor  # (N, Cb) float16
    labels: torch.Tensor  # (N,) int64
    weights: torch.Tensor  # (N,) float32


def _class_map(base: LabelSet, target: LabelSet) -> torch.Tensor:
    """``(C, Cb)``: 1 where a project class has a base class's name (any case)."""
    index = {n.casefold(): i for i, n in enumerate(base.names)}
    m = torch.zeros(target.num_classes, base.num_classes)
    for c, name in enumerate(target.names):
        if name.casefold() in index:
            m[c, index[name.casefold()]] = 1.0
    return m


def _stratified(
    labels: np.ndarray,
    num_classes: int,
    per_image: int,
    min_per_class: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and weights of a class-stratified sample of the labelled pixels."""
    flat = labels.reshape(-1)
    counts = np.bincount(flat[flat < num_classes], minlength=num_classes)
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32)
    rows: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    budget = min(per_image, total)
    for c in np.nonzero(counts)[0]:
        idx = np.flatnonzero(flat == c)
        k = min(len(idx), max(min_per_class, round(budget * len(idx) / total)))
        take = rng.choice(idx, k, replace=False)
        rows.append(take)
        # together the image's samples weigh `budget`, each class by its share of pixels
        weights.append(np.full(k, budget * len(idx) / total / k, np.float32))
    order = np.concatenate(rows)
    w = np.concatenate(weights)
    perm = rng.permutation(len(order))  # so any prefix is a fair sample
    width = labels.shape[1]
    return order[perm] // width, order[perm] % width, w[perm]


class LiveLearner:
    """A head over a frozen SegNet, refitted on every labelled pixel in seconds.

    Parameters
    ----------
    base : LoadedModel
        A SegNet (architecture ``segnet``): the bundled model or one of the project's.
        A ``live`` model continues where it left off (its head is kept).
    labelset : LabelSet
        The project's classes.
    config : LiveConfig
    device : str
        Where the features and the fit run (``"cpu"`` is the default: the head is
        small and the window's GPU, if any, belongs to the fine-tune).

    Raises
    ------
    TrainingError
        The base model is not a SegNet.
    """

    def __init__(
        self,
        base: LoadedModel,
        labelset: LabelSet,
        config: LiveConfig | None = None,
        *,
        device: str = "cpu",
    ) -> None:
        self.config = config or LiveConfig()
        self.labelset = labelset
        self.device = torch.device(device)
        self._rng = np.random.default_rng(self.config.seed)
        self._samples: dict[str, _Samples] = {}
        self._replay: dict[str, _Samples] = {}
        self._base_predictor: Predictor | None = None
        self._fits = 0
        self._predictor: Predictor | None = None
        info = base.info
        previous: LiveNet | None = None
        c = self.config
        if info.arch.name == "live":  # continue a live model: its base, and its head if it fits
            previous = base.network  # type: ignore[assignment]
            base_net = previous.base  # type: ignore[union-attr]
            base_labels = info.provenance.get("base_classes")
            base_ls = LabelSet.from_dict(base_labels) if isinstance(base_labels, Mapping) else None
            params = dict(info.arch.params)
            self.parent = dict(info.provenance.get("parent", {}))
            try:  # its base on its own predicts what replay takes
                self._base_model: LoadedModel | None = base_model(base)
            except ModelFileError:
                self._base_model = None
        elif info.arch.name == "segnet":
            self._base_model = base
            base_net = base.network
            base_ls = info.labelset
            params = {
                "base_classes": info.labelset.num_classes,
                "base_width": info.arch.params["width"],
                "in_channels": int(info.arch.params.get("in_channels", 3)),
                "hidden": c.hidden,
                "colour_strides": list(c.colour_strides),
                "decoder": True,
            }
            self.parent = {
                "path": str(base.path) if base.path else None,
                "arch": info.arch.to_dict(),
                "classes": list(info.labelset.names),
            }
        else:
            raise TrainingError(
                f"the live learner reads a SegNet's features; this model is a "
                f"{info.arch.name!r}: use the bundled model or a SegNet"
            )
        # which base class is which project class, by name: what replay's labels are
        class_map = (
            _class_map(base_ls, labelset)
            if base_ls is not None
            else torch.zeros(labelset.num_classes, params["base_classes"])
        )
        keep_head = previous is not None and previous.out.out_channels == labelset.num_classes
        if not keep_head:
            # the decoder (its features and class scores) is read only when the base
            # knows some of the project's classes; otherwise the encoder is enough
            params["decoder"] = bool(class_map.sum() > 0) if c.decoder is None else c.decoder
            params["hidden"] = c.hidden
            # the encoder's coarse features leave specks; the decoder's are sharp
            params["smooth"] = 1 if params["decoder"] else c.smooth
        self.base_labelset = base_ls
        self.spec = ArchSpec("live", params)
        self.normalization = info.normalization
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            net = LiveNet(
                labelset.num_classes,
                params["base_classes"],
                params["base_width"],
                params["in_channels"],
                params["hidden"],
                tuple(params["colour_strides"]),
                params["decoder"],
                params.get("smooth", 1),
            )
        net.base.load_state_dict(base_net.state_dict())
        if keep_head:
            net.load_state_dict(previous.state_dict())  # type: ignore[union-attr]
            self._fits = 1
        else:
            with torch.no_grad():
                net.from_base.weight.copy_(class_map[..., None, None])
        self.net = net.eval()
        self._class_map = class_map
        # where the fit pulls the base's scores' weights back to: the class map, or the
        # weights of the live model it continues (never a class map: they are learnt)
        self._prior = net.from_base.weight.detach().clone()
        # the frozen feature extractor: batch norms folded, as the predictor does
        # (a copy: folding is in place, and the saved model keeps its batch norms)
        self._extractor = fold_batchnorm(copy.deepcopy(net)).eval().to(self.device)
        mean = torch.tensor(self.normalization.mean, dtype=torch.float32)
        std = torch.tensor(self.normalization.std, dtype=torch.float32)
        self._scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1).to(self.device)
        self._shift = (-mean / std).view(1, -1, 1, 1).to(self.device)

    # ------------------------------------------------------------------ samples

    @property
    def images(self) -> list[str]:
        """Names of the images the learner has samples of."""
        return list(self._samples)

    @property
    def sample_count(self) -> int:
        return sum(len(s.labels) for s in self._samples.values())

    @property
    def fitted(self) -> bool:
        return self._fits > 0

    @property
    def ready(self) -> bool:
        """Whether it predicts anything yet: fitted, or the base network knows some classes."""
        return self.fitted or (self.net.decoder and bool(self._prior.abs().sum() > 0))

    @torch.inference_mode()
    def _features_at(
        self, rgb: np.ndarray, ys: np.ndarray, xs: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = rgb.shape[:2]
        dim = self.net.feature_dim
        feats = torch.empty(len(ys), dim, dtype=torch.float16)
        width = self.net.from_base.in_channels if self.net.decoder else 0
        scores = torch.empty(len(ys), width, dtype=torch.float16)
        align = self.net.alignment
        step = _TILE - _TILE // 4  # tiles overlap: a sample is read away from a tile's edge
        for y0 in range(0, max(h - _TILE // 4, 1), step) if h > _TILE else [0]:
            for x0 in range(0, max(w - _TILE // 4, 1), step) if w > _TILE else [0]:
                y0a, x0a = y0 // align * align, x0 // align * align
                y1, x1 = min(y0a + _TILE, h), min(x0a + _TILE, w)
                # the samples whose nearest tile centre is this one
                inside = (ys >= y0a) & (ys < y1) & (xs >= x0a) & (xs < x1)
                if h > _TILE:
                    inside &= (ys >= (y0a + _TILE // 8 if y0a else 0)) & (
                        (ys < y1 - _TILE // 8) | (y1 == h)
                    )
                if w > _TILE:
                    inside &= (xs >= (x0a + _TILE // 8 if x0a else 0)) & (
                        (xs < x1 - _TILE // 8) | (x1 == w)
                    )
                idx = np.flatnonzero(inside)
                if len(idx) == 0:
                    continue
                crop = np.ascontiguousarray(rgb[y0a:y1, x0a:x1])
                x = torch.from_numpy(crop).to(self.device).permute(2, 0, 1)[None].float()
                x = x * self._scale + self._shift
                tf, sc = self._extractor.taps(x)
                ty = torch.from_numpy(ys[idx] - y0a).to(self.device)
                tx = torch.from_numpy(xs[idx] - x0a).to(self.device)
                f, s = gather_taps(tf, sc, ty, tx, self.net.strides)
                feats[idx] = f.cpu().half()
                scores[idx] = s.cpu().half()
        return feats, scores

    def add_image(self, name: str, rgb: np.ndarray, labels: np.ndarray) -> int:
        """Take (or replace) the labelled pixels of one image; returns how many were sampled.

        An image with no labelled pixel is dropped from the samples. A replayed
        image of that name (:meth:`add_replay`) gives way to its labels.
        """
        if labels.shape != rgb.shape[:2]:
            raise TrainingError(f"{name}: labels and image differ in size")
        labels = np.where(labels < self.labelset.num_classes, labels, UNLABELED).astype(np.uint8)
        self._replay.pop(name, None)
        return self._keep(self._samples, name, self._sample(rgb, labels, 1.0))

    @property
    def replays(self) -> bool:
        """Whether :meth:`add_replay` takes anything: the base network knows every one of
        the project's classes by name (its predictions are then labels of the project)."""
        known = self._class_map.sum(1) > 0
        return self._base_model is not None and self.net.decoder and bool(known.all())

    def add_replay(self, name: str, rgb: np.ndarray, *, cancelled: Any = None) -> int:
        """Replay what the base network knew on an unlabelled image of the project.

        The base network predicts the image; its pixels predicted with at least
        ``replay_confidence`` become samples like labelled ones, the image
        weighing ``replay_weight`` of a labelled image. So a head fitted on a
        few labelled images keeps the base's answers where those images say
        nothing (a class they lack, a scene unlike them), instead of unlearning
        them: on the CamVid val drive, 10 labelled frames and 10 replayed ones
        took the later frames' mIoU from 0.563 to 0.662 (0.618 without replay),
        and on train drive 0006R0, which the bundled model was trained on, from
        0.514 to 0.503 (0.375 without; ``benchmarks/bench_finetune.py --live
        --replay``). Returns
        the pixels sampled; 0 when the base does not know every project class
        (:attr:`replays`), or the image is already labelled here.
        """
        if not self.replays or name in self._samples:
            return 0
        assert self._base_model is not None
        if self._base_predictor is None:
            self._base_predictor = Predictor(self._base_model, device=str(self.device))
        pred = self._base_predictor.predict(rgb, cancelled=cancelled)
        lut = np.full(256, UNLABELED, np.uint8)
        for c, b in (self._class_map > 0).nonzero().tolist():
            lut[b] = c
        labels = lut[pred.sure(self.config.replay_confidence)]  # lut[255] is 255
        return self._keep(self._replay, name, self._sample(rgb, labels, self.config.replay_weight))

    def _keep(self, store: dict[str, _Samples], name: str, taken: _Samples | None) -> int:
        """Store an image's samples (or drop the image when it has none); the pixels
        sampled, each counted once even when it was also read mirrored."""
        if taken is None:
            store.pop(name, None)
            return 0
        store[name] = taken
        self._trim()
        return len(taken.labels) // (2 if self._mirrored else 1)

    @property
    def _mirrored(self) -> bool:
        c = self.config
        return bool(c.mirror or (c.mirror is None and not self.net.decoder))

    def _sample(self, rgb: np.ndarray, labels: np.ndarray, weight: float) -> _Samples | None:
        """A class-stratified sample of ``labels``' pixels and their features (None: none)."""
        c = self.config
        ys, xs, w = _stratified(
            labels, self.labelset.num_classes, c.per_image, c.min_per_class, self._rng
        )
        if len(ys) == 0:
            return None
        feats, scores = self._features_at(rgb, ys, xs)
        classes = torch.from_numpy(labels[ys, xs].astype(np.int64))
        weights = torch.from_numpy(w) * weight
        if self._mirrored:
            # the same pixels read from the mirrored image: the network is not mirror
            # symmetric, so these are new views; interleaved, so any prefix holds both
            flipped = np.ascontiguousarray(rgb[:, ::-1])
            f2, s2 = self._features_at(flipped, ys, rgb.shape[1] - 1 - xs)
            feats = torch.stack([feats, f2], 1).flatten(0, 1)
            scores = torch.stack([scores, s2], 1).flatten(0, 1)
            classes = classes.repeat_interleave(2)
            weights = weights.repeat_interleave(2) / 2  # the image weighs what it did
        return _Samples(feats, scores, classes, weights)

    def _trim(self) -> None:
        """Keep at most ``max_samples`` in memory: every image (labelled or replayed) an
        equal share (a prefix of its shuffled sample, weighted up to stand for all of it)."""
        share = max(1, self.config.max_samples // max(1, len(self._samples) + len(self._replay)))
        for store in (self._samples, self._replay):
            for name, s in list(store.items()):
                n = len(s.labels)
                if n > share:
                    store[name] = _Samples(
                        s.feats[:share].clone(),
                        s.scores[:share].clone(),
                        s.labels[:share].clone(),
                        s.weights[:share] * (n / share),
                    )

    def remove_image(self, name: str) -> None:
        self._samples.pop(name, None)

    @property
    def replayed(self) -> list[str]:
        """Names of the unlabelled images replayed (:meth:`add_replay`)."""
        return list(self._replay)

    def _training_set(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        parts = [(s.feats, s.scores, s.labels, s.weights) for s in self._samples.values()]
        parts += [(s.feats, s.scores, s.labels, s.weights) for s in self._replay.values()]
        feats = torch.cat([p[0] for p in parts])
        scores = torch.cat([p[1] for p in parts])
        labels = torch.cat([p[2] for p in parts])
        weights = torch.cat([p[3] for p in parts])
        # a labelled image's samples weigh 1 on average; replayed ones what the recipe says
        labelled = sum(len(s.labels) for s in self._samples.values())
        return feats, scores, labels, weights / weights[:labelled].mean()

    # ------------------------------------------------------------------ fit

    def fit(self, *, cancelled: Any = None) -> FitReport:
        """Retrain the head on every sample (warm-started from the last fit).

        ``cancelled``, a callable, is polled between minibatches; the head keeps
        its previous weights when it answers True.

        Raises
        ------
        TrainingError
            No labelled pixel yet.
        """
        if not self._samples:
            raise TrainingError("no labelled pixels yet: paint some, then learn")
        t0 = time.perf_counter()
        c = self.config
        feats, scores, labels, weights = self._training_set()
        x32 = feats.float()
        mu = x32.mean(0)
        sd = x32.std(0).clamp_min(1e-3)
        del x32
        net = self.net
        dim, hidden = net.feature_dim, c.hidden
        # the first layer in raw-feature units: W (H, D), b (H)
        w_raw = torch.cat([p.weight.detach().view(hidden, -1) for p in net.project], 1)
        b_raw = net.project[0].bias.detach().clone()
        gen = torch.Generator().manual_seed(c.seed + self._fits)
        w1 = torch.nn.Parameter(w_raw * sd)  # standardised units
        b1 = torch.nn.Parameter(b_raw + w_raw @ mu)
        if not self.fitted:
            with torch.no_grad():
                torch.nn.init.kaiming_uniform_(w1, a=math.sqrt(5), generator=gen)
                b1.zero_()
        w2 = torch.nn.Parameter(net.out.weight.detach().view(-1, hidden).clone())
        b2 = torch.nn.Parameter(net.out.bias.detach().clone())
        lmap = torch.nn.Parameter(net.from_base.weight.detach().view(w2.shape[0], -1).clone())
        prior = self._prior.view_as(lmap)
        params = [w1, b1, w2, b2, lmap]
        opt = torch.optim.Adam(params, lr=c.lr)
        steps = c.steps if not self.fitted else max(1, c.warm_steps)
        n = len(labels)
        loss_sum, loss_n = 0.0, 0
        for step in range(steps):
            if cancelled is not None and cancelled():
                return FitReport(
                    time.perf_counter() - t0, n, len(self._samples), math.nan, len(self._replay)
                )
            idx = torch.randint(0, n, (min(c.batch, n),), generator=gen)
            x = (feats[idx].float() - mu) / sd
            z = F.relu(x @ w1.T + b1) @ w2.T + b2
            if net.decoder:
                z = z + scores[idx].float() @ lmap.T
            ce = F.cross_entropy(z, labels[idx], reduction="none")
            loss = (ce * weights[idx]).mean()
            reg = c.weight_decay * (w1.square().sum() + w2.square().sum()) / dim
            reg = reg + c.weight_decay * (lmap - prior).square().sum()
            opt.zero_grad(set_to_none=True)
            (loss + reg).backward()
            opt.step()
            if step >= steps // 2:
                loss_sum += loss.item()
                loss_n += 1
        with torch.no_grad():
            w_new = w1.detach() / sd  # back to raw units
            b_new = b1.detach() - w_new @ mu
            start = 0
            for k, proj in enumerate(net.project):
                width = proj.in_channels
                proj.weight.copy_(w_new[:, start : start + width].view_as(proj.weight))
                start += width
                if k == 0:
                    proj.bias.copy_(b_new)
            net.out.weight.copy_(w2.detach().view_as(net.out.weight))
            net.out.bias.copy_(b2.detach())
            net.from_base.weight.copy_(lmap.detach().view_as(net.from_base.weight))
        self._fits += 1
        self._predictor = None
        report = FitReport(
            time.perf_counter() - t0,
            n,
            len(self._samples),
            loss_sum / max(1, loss_n),
            len(self._replay),
        )
        log.info(
            "live learner: fit %d on %d samples of %d labelled and %d replayed images in %.2f s",
            self._fits,
            n,
            report.images,
            report.replayed,
            report.seconds,
        )
        return report

    # ------------------------------------------------------------------ use

    def model(self, **provenance: Any) -> LoadedModel:
        """The learner as a model (a copy): save it, predict with it, evaluate it.

        ``provenance`` adds to (or, like ``parent``, replaces) what it records."""
        prov = default_provenance(
            **{
                "kind": "live",
                "parent": self.parent,
                "images": len(self._samples),
                "replayed": len(self._replay),
                "samples": self.sample_count,
                "recipe": {k: getattr(self.config, k) for k in self.config.__dataclass_fields__},
                **({"base_classes": self.base_labelset.to_dict()} if self.base_labelset else {}),
                **provenance,
            }
        )
        info = ModelInfo(self.spec, self.labelset, self.normalization, prov)
        return LoadedModel(info, copy.deepcopy(self.net).eval())

    def predictor(self) -> Predictor:
        """A predictor of the current head (rebuilt after each fit)."""
        if self._predictor is None:
            self._predictor = Predictor(self.model(), device=str(self.device), precision="fp32")
        return self._predictor

    def predict(self, rgb: np.ndarray, *, cancelled: Any = None) -> Prediction:
        """The current head's prediction of one image.

        ``cancelled``, a callable, is asked before every layer of the network.

        Raises
        ------
        TrainingError
            Nothing learnt yet.
        PredictionCancelled
            ``cancelled()`` answered True.
        """
        if not self.ready:
            raise TrainingError("nothing learnt yet: label some pixels first")
        return self.predictor().predict(rgb, cancelled=cancelled)
