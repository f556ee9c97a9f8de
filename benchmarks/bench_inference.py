"""Inference latency at 480 x 360 on this machine: the predictor's chosen path against
plain float32 eager PyTorch, in the same run.

Variants, timed interleaved (one of each per round, so a busy machine slows all
of them alike):

- ``fp32_eager``: the plain network, float32, eager, NCHW, batch norm unfolded,
  under ``torch.no_grad()``, then ``argmax`` -- what a straightforward PyTorch
  loop gives (the baseline of every ratio);
- ``predictor_fp32``: :class:`segstudio.model.predictor.Predictor` with
  ``precision="fp32"`` (batch norm folded, channels-last), end to end: uint8
  image in, class map and confidence out;
- ``predictor_auto``: the Predictor with its defaults, end to end; its
  ``path`` says what it chose (``bf16`` on CPUs with AMX, ``int8-onednn`` on
  others for a calibrated SegNet-family model, else ``bf16`` where the CPU has
  bf16 units, else ``fp32``);
- ``predictor_bf16`` and ``predictor_int8``: each path the CPU can run, by
  hand, so the choice is weighed in the same run (on an AVX512-BF16 CPU
  without AMX both run).

Without ``--model`` each architecture is built with random weights, and a
SegNet-family one is calibrated for int8 on a few random images (its
latency, not its accuracy, is what is measured). With ``--model`` the model
file is measured on real frames (``--frames DIR``); a model without an int8
calibration is calibrated on ``--calibrate DIR`` images first.

To measure what an AVX2-only CPU gets on a machine with AVX-512/AMX, cap
oneDNN and ATen (honoured by every path here; ONNX Runtime and FBGEMM would
not honour it)::

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 \\
        python benchmarks/bench_inference.py --threads 2 \\
        --model resources/camvid_segnet.safetensors \\
        --frames ../shared/data/camvid/val --calibrate ../shared/data/camvid/train

Prints one JSON object naming the CPU, its instruction sets and the caps in force.
On a machine shared with other jobs wall times swell; ``cpu_ms`` (CPU time
of this process) swells much less, and with ``--threads 1`` it is the
compute a frame needs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from machine import machine_info
from torch.utils.flop_counter import FlopCounterMode

from segstudio.core.labelset import preset
from segstudio.model.arch import ArchSpec, count_parameters
from segstudio.model.files import LoadedModel, load_model, new_model
from segstudio.model.predictor import DeviceError, Predictor, cpu_has_native_bf16
from segstudio.model.quantize import calibrate, calibration_of, quantizable, with_calibration

CONFIGS = {
    "segnet": ArchSpec("segnet"),
    "segnet_w0.5": ArchSpec("segnet", {"width": 0.5}),
    "segnet_w0.375": ArchSpec("segnet", {"width": 0.375}),
    "segnet_w0.25": ArchSpec("segnet", {"width": 0.25}),
    "segnet_basic": ArchSpec("segnet_basic"),
    "unet_w0.5": ArchSpec("unet", {"width": 0.5}),
    "unet_w0.25": ArchSpec("unet", {"width": 0.25}),
    "fcn8s_w0.5": ArchSpec("fcn8s", {"width": 0.5}),
    "deconvnet_w0.5": ArchSpec("deconvnet", {"width": 0.5}),
    "deeplab_w0.5": ArchSpec("deeplab", {"width": 0.5}),
    "deeplab_w0.25": ArchSpec("deeplab", {"width": 0.25}),
    "pspnet_w0.5": ArchSpec("pspnet", {"width": 0.5}),
}


def _interleaved(
    fns: dict[str, Callable[[np.ndarray], object]], frames: list[np.ndarray], repeat: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Wall and process-CPU seconds per call of each function, one call of each per round."""
    for fn in fns.values():  # warm-up (oneDNN primitive creation, caches)
        fn(frames[0])
        fn(frames[-1])
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in fns}
    for i in range(repeat):
        rgb = frames[i % len(frames)]
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn(rgb)
            times[name][0].append(time.perf_counter() - t0)
            times[name][1].append(time.process_time() - c0)
    return times


def _summary(
    times: tuple[list[float], list[float]], base: tuple[list[float], list[float]]
) -> dict[str, float]:
    """Medians and ratios; ``cpu_ms`` (process CPU time, all threads) is what a busy
    machine inflates least: with ``--threads 1`` it is the pure compute per frame."""
    wall, cpu = times
    med, med_cpu = statistics.median(wall), statistics.median(cpu)
    return {
        "median_ms": round(1e3 * med, 1),
        "min_ms": round(1e3 * min(wall), 1),
        "cpu_ms": round(1e3 * med_cpu, 1),
        "speedup_vs_fp32_eager": round(statistics.median(base[0]) / med, 2),
        "cpu_speedup_vs_fp32_eager": round(statistics.median(base[1]) / med_cpu, 2),
    }


def measure(model: LoadedModel, frames: list[np.ndarray], repeat: int) -> dict[str, object]:
    """Time the three variants on ``frames`` (cycled) and summarise them."""
    net = model.network.float().eval()
    norm = model.info.normalization
    mean = torch.tensor(norm.mean).view(1, -1, 1, 1)
    std = torch.tensor(norm.std).view(1, -1, 1, 1)
    x = torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    gflop = counter.get_total_flops() / 1e9

    def eager(rgb: np.ndarray) -> None:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
        with torch.no_grad():
            net((x / 255.0 - mean) / std).argmax(1)

    fp32 = Predictor(model, device="cpu", precision="fp32")
    t0 = time.perf_counter()
    auto = Predictor(model, device="cpu")
    setup_s = time.perf_counter() - t0
    fns = {"fp32_eager": eager, "predictor_fp32": fp32.predict, "predictor_auto": auto.predict}
    if cpu_has_native_bf16():
        fns["predictor_bf16"] = Predictor(model, device="cpu", precision="bf16").predict
    with contextlib.suppress(DeviceError):
        fns["predictor_int8"] = Predictor(model, device="cpu", precision="int8").predict
    times = _interleaved(fns, frames, repeat)
    base = times["fp32_eager"]
    return {
        "arch": model.info.arch.to_dict(),
        "parameters": count_parameters(net),
        "gflop": round(gflop, 1),
        "chosen_path": auto.path,
        "predictor_setup_s": round(setup_s, 2),
        "fp32_eager": _summary(base, base),
        "predictor_fp32": _summary(times["predictor_fp32"], base),
        "predictor_auto": _summary(times["predictor_auto"], base),
        **{k: _summary(times[k], base) for k in ("predictor_bf16", "predictor_int8") if k in times},
        "predictor_auto_gflops": round(gflop / statistics.median(times["predictor_auto"][0]), 1),
    }


def _read_folder(folder: str, count: int) -> list[np.ndarray]:
    from segstudio.io.images import list_images, read_image

    paths = list_images(folder)
    if not paths:
        raise SystemExit(f"{folder}: no images")
    step = max(1, len(paths) // count)
    return [read_image(p).rgb for p in paths[::step][:count]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=9, help="timed rounds")
    ap.add_argument("--arch", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--model", help="measure this model file instead of --arch")
    ap.add_argument("--frames", help="folder of images to predict (with --model)")
    ap.add_argument("--calibrate", help="int8 calibration images for a model without one")
    ap.add_argument("--calibration-images", type=int, default=16)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8) for _ in range(3)]
    results = {}
    if args.model:
        model = load_model(args.model)
        frames = _read_folder(args.frames, 7) if args.frames else noise
        calibration = "stored in the model file"
        if calibration_of(model) is None and quantizable(model.network):
            if not args.calibrate:
                calibration = "none (give --calibrate DIR for the int8 path)"
            else:
                images = _read_folder(args.calibrate, args.calibration_images)
                model = with_calibration(model, calibrate(model, images))
                calibration = f"{len(images)} images of {args.calibrate}"
        results[Path(args.model).name] = {**measure(model, frames, args.repeat)}
        results[Path(args.model).name]["int8_calibration"] = calibration
    else:
        for name in args.arch:
            model = new_model(CONFIGS[name], preset("camvid11"))
            if quantizable(model.network):
                model = with_calibration(model, calibrate(model, noise))
            results[name] = measure(model, noise, args.repeat)
    print(
        json.dumps(
            {
                "benchmark": "inference",
                "image": [args.width, args.height],
                "repeat": args.repeat,
                "machine": machine_info(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
