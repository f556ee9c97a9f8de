"""The bundled CamVid model: its quality on CamVid val and its latency on this CPU.

Quality comes from ``segstudio eval`` itself (run as a subprocess, the
command a user types), so the model card's figures are the ones ``eval``
prints. Latency is measured on real CamVid val frames (480 x 360):

- baseline: the same network, float32, eager, NCHW, batch norm unfolded,
  under ``torch.no_grad()``, what a plain PyTorch loop gives;
- ours: :class:`segstudio.model.predictor.Predictor` end to end (uint8
  image in, class map and confidence out) with its defaults.

The predictor's chosen path (``bf16`` where the CPU has bf16 units, else
``int8-onednn`` for a model with an int8 calibration, else ``fp32``) is also
compared with its ``fp32`` path on every val image: mean IoU of each, their
difference and the share of pixels where the two agree. A model without a
stored int8 calibration is calibrated first on ``--calibration-images``
images of CamVid train (so the int8 path can be weighed before the model
file carries one). Emulate an AVX2-only CPU with
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` (oneDNN honours it).

Prints one JSON object. Run:
``python benchmarks/bench_bundled.py [--model M] [--data ../shared/data/camvid] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine_info

from segstudio.core.bundled import bundled_model_path
from segstudio.core.metrics import ConfusionMatrix
from segstudio.io.images import list_images, read_image
from segstudio.model.arch import count_parameters
from segstudio.model.files import LoadedModel, load_model
from segstudio.model.predictor import Predictor
from segstudio.model.quantize import calibrate, calibration_of, quantizable, with_calibration

REPO = Path(__file__).resolve().parents[1]


def _latency(fn, frames: list, repeat: int) -> list[float]:
    for frame in frames[:2]:  # warm-up
        fn(frame)
    times = []
    for i in range(repeat):
        frame = frames[i % len(frames)]
        t0 = time.perf_counter()
        fn(frame)
        times.append(time.perf_counter() - t0)
    return times


def compare_paths(model: LoadedModel, data: Path, void: int) -> dict:
    """mIoU on val of the predictor's chosen path and of its fp32 path, and their agreement."""
    from segstudio.training.data import Sample

    chosen = Predictor(model, device="cpu")
    fp32 = Predictor(model, device="cpu", precision="fp32")
    n = model.info.labelset.num_classes
    cms = {"chosen": ConfusionMatrix(n), "fp32": ConfusionMatrix(n)}
    agree, pixels = 0, 0
    images = list_images(data / "val")
    for image in images:
        sample = Sample(image.name, image, label_path=data / "valannot" / image.name, void=void)
        rgb, labels, _ = sample.load()
        a, b = chosen.predict(rgb).labels, fp32.predict(rgb).labels
        cms["chosen"].update(a, labels)
        cms["fp32"].update(b, labels)
        agree += int(np.count_nonzero(a == b))
        pixels += a.size
    miou = {k: cm.compute().mean_iou for k, cm in cms.items()}
    return {
        "chosen_path": chosen.path,
        "images": len(images),
        "mean_iou_chosen": round(miou["chosen"], 4),
        "mean_iou_fp32": round(miou["fp32"], 4),
        "mean_iou_delta_points": round(100 * (miou["chosen"] - miou["fp32"]), 2),
        "pixel_agreement": round(agree / pixels, 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="model file (default: the bundled model)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "camvid"))
    ap.add_argument("--repeat", type=int, default=21, help="timed predictions per variant")
    ap.add_argument("--frames", type=int, default=7, help="val frames cycled through")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--calibration-images", type=int, default=16)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    path = Path(args.model) if args.model else bundled_model_path()
    if path is None:
        sys.exit("no --model given, and this build has no bundled model")
    val = Path(args.data) / "val"
    if not val.is_dir():
        sys.exit(f"{val}: no CamVid val split here (give --data)")

    t0 = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "segstudio",
            "eval",
            str(val),
            "--model",
            str(path),
            "--json",
            "--precision",
            "fp32",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    eval_s = time.perf_counter() - t0
    if run.returncode != 0:
        sys.exit(f"segstudio eval failed: {run.stderr.strip()}")
    quality = json.loads(run.stdout)

    model = load_model(path)
    calibration = "stored in the model file" if calibration_of(model) else "none"
    if calibration_of(model) is None and quantizable(model.network):
        train = list_images(Path(args.data) / "train")
        step = max(1, len(train) // args.calibration_images)
        picked = train[::step][: args.calibration_images]
        model = with_calibration(model, calibrate(model, (read_image(p).rgb for p in picked)))
        calibration = f"{len(picked)} CamVid train images (every {step}th), made by this run"
    void = quality.get("void")
    paths = compare_paths(model, Path(args.data), 11 if void is None else int(void))
    paths["int8_calibration"] = calibration
    frames = [read_image(p).rgb for p in list_images(val)[: args.frames]]
    net = model.network.float().eval()

    def baseline(rgb) -> None:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)
        with torch.no_grad():
            net(x).argmax(1)

    predictor = Predictor(model)
    fp32 = Predictor(model, precision="fp32")
    ours = _latency(predictor.predict, frames, args.repeat)
    base = _latency(baseline, frames, max(5, args.repeat // 3))
    plain = _latency(fp32.predict, frames, max(5, args.repeat // 3))
    med_o, med_b = statistics.median(ours), statistics.median(base)
    print(
        json.dumps(
            {
                "benchmark": "bundled_model",
                "model": str(path),
                "file_bytes": path.stat().st_size,
                "arch": model.info.arch.to_dict(),
                "parameters": count_parameters(net),
                "eval_command": f"segstudio eval {val} --model {path} --precision fp32",
                "quality": quality,
                "eval_wall_s": round(eval_s, 2),
                "paths_on_val": paths,
                "latency_480x360": {
                    "predictor_s": {
                        "median": round(med_o, 4),
                        "p90": round(statistics.quantiles(ours, n=10)[-1], 4),
                        "min": round(min(ours), 4),
                    },
                    "baseline_fp32_eager_s": {
                        "median": round(med_b, 4),
                        "min": round(min(base), 4),
                    },
                    "predictor_fp32_s": {
                        "median": round(statistics.median(plain), 4),
                        "min": round(min(plain), 4),
                    },
                    "speedup_median": round(med_b / med_o, 2),
                    "repeat": args.repeat,
                    "predictor": repr(predictor),
                    "predictor_path": predictor.path,
                    "predictor_device": str(predictor.device),
                    # int8 for the int8 path (its input and output are float32)
                    "predictor_dtype": "int8"
                    if predictor.path.startswith("int8")
                    else str(predictor.dtype).replace("torch.", ""),
                },
                "machine": machine_info(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
