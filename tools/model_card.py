"""Write the bundled model's card from what was measured, never from typed-in figures.

Inputs: the model file (its provenance: data, recipe, steps, device), the JSON
that ``benchmarks/bench_bundled.py`` printed (quality from ``segstudio eval``,
latency, machine) and, when given, the training checkpoint folder, whose
``elapsed_s`` counts every resumed run of the training.

Run: ``python tools/model_card.py --model M --bench B.json [--checkpoint DIR]
--out resources/camvid_segnet.md``
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from segstudio.core.atomic import atomic_write_text
from segstudio.model.files import read_model_info


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _duration(seconds: float) -> str:
    h, rest = divmod(round(seconds), 3600)
    return f"{h} h {rest // 60:02d} min"


def _weight_dtypes(model: Path) -> str:
    from safetensors import safe_open

    with safe_open(str(model), "np") as f:
        kinds = {str(f.get_slice(k).get_dtype()).lower() for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    names = {"f16": "float16", "f32": "float32", "bf16": "bfloat16"}
    return "/".join(names.get(k, k) for k in sorted(kinds) if k.startswith(("f", "bf")))


def train_command(
    info: Any,
    void: int | None,
    prov: dict[str, Any] | None = None,
    out: str = "model",
    source: str = "",
) -> str:
    """The ``segstudio train`` command that the model's recipe stands for (``prov``:
    the provenance of one stage, default the model's own; a distillation stage
    starts from the stage before and names its teacher)."""
    prov = info.provenance if prov is None else prov
    recipe = prov.get("recipe", {})
    parts = ["segstudio train", source or str(prov.get("source", "DATA"))]
    teacher = prov.get("teacher")
    if teacher:
        parts += ["--init WORK_FOLDER/student.safetensors"]
        parts += ["--teacher WORK_FOLDER/teacher.safetensors"]
        parts += ["--recipe full", "--distill-weight", f"{teacher['distill_weight']:g}"]
    else:
        parts += ["--arch", info.arch.name]
        if "width" in info.arch.params:
            parts += ["--width", f"{info.arch.params['width']:g}"]
    for flag, key in (("--epochs", "epochs"), ("--minutes", "minutes"),
                      ("--batch-size", "batch_size"), ("--crop", "crop"), ("--lr", "lr"),
                      ("--seed", "seed")):  # fmt: skip
        if recipe.get(key) is not None:
            parts += [
                flag,
                f"{recipe[key]:g}" if isinstance(recipe[key], float) else str(recipe[key]),
            ]
    if void is not None:
        parts += ["--void", str(void)]
    parts += [f"--checkpoint-dir WORK_FOLDER/{out}.ckpt", f"--out WORK_FOLDER/{out}.safetensors"]
    return " ".join([*parts, "--resume"])


def training_seconds(prov: dict[str, Any], ckpt: dict[str, Any] | None) -> float:
    """Training time over every resumed run: the model's own figure, or the final
    checkpoint's when that checkpoint is of this very run (models made before
    ``duration_s`` counted resumed runs)."""
    seconds = float(prov.get("duration_s") or 0.0)
    if (
        ckpt is not None
        and ckpt.get("step") == prov.get("steps")
        and ckpt.get("config") == prov.get("recipe")
        and isinstance(ckpt.get("elapsed_s"), int | float)
    ):
        seconds = max(seconds, float(ckpt["elapsed_s"]))
    return seconds


def _cpu(machine: dict[str, Any]) -> str:
    """The CPU and what of it was used: a cap (emulating a lesser CPU) is named."""
    cap = machine.get("isa_cap") or {}
    isa = cap.get("ONEDNN_MAX_CPU_ISA")
    best = (
        "AMX"
        if "amx_bf16" in machine.get("isa", [])
        else "AVX-512"
        if any(i.startswith("avx512") for i in machine.get("isa", []))
        else "AVX2"
    )
    used = f"capped at {isa} (`ONEDNN_MAX_CPU_ISA={isa}`)" if isa else f"with {best}"
    return f"{machine['cpu']} {used}, {machine['torch_threads']} threads"


def _speed_lines(benches: list[dict[str, Any]]) -> list[str]:
    """One row per benchmark run (CPU and instruction-set cap), then each run's paths on val."""
    lines = [
        "From uint8 image to class map and confidence, median of "
        f"{benches[0]['latency_480x360']['repeat']} predictions of real val frames; the "
        "baseline is the same network in plain float32 eager PyTorch, timed in the same run.",
        "",
        "| CPU | path chosen | ms per image | plain fp32 ms | speed-up |",
        "| --- | --- | --- | --- | --- |",
    ]
    for b in benches:
        lat = b["latency_480x360"]
        p, base = lat["predictor_s"], lat["baseline_fp32_eager_s"]
        lines.append(
            f"| {_cpu(b['machine'])} | {lat.get('predictor_path', lat['predictor_dtype'])} | "
            f"{1000 * p['median']:.0f} (p90 {1000 * p['p90']:.0f}) | {1000 * base['median']:.0f} "
            f"| {lat['speedup_median']:g}x |"
        )
    lines += [
        "",
        "Each path against float32 on all val images (the classes it gives):",
        "",
        "| CPU | path | mean IoU | fp32 mean IoU | difference | pixels that agree |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for b in benches:
        v = b.get("paths_on_val") or {}
        if v:
            lines.append(
                f"| {_cpu(b['machine'])} | {v['chosen_path']} | {_pct(v['mean_iou_chosen'])} | "
                f"{_pct(v['mean_iou_fp32'])} | {v['mean_iou_delta_points']:+.2f} points | "
                f"{_pct(v['pixel_agreement'])} |"
            )
    lines += [
        "",
        "Measured with `python benchmarks/bench_bundled.py --threads 2` (prefix "
        "`ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2` for the AVX2 row on a newer CPU).",
    ]
    return lines


def _distill_lines(prov: dict[str, Any]) -> list[str]:
    """The distillation stage of a student model, in words."""
    teacher, recipe = prov["teacher"], prov.get("recipe", {})
    t_iou = teacher.get("mean_iou")
    return [
        f"- Then distilled: {recipe.get('epochs')} more epochs from those weights "
        f"({prov.get('steps')} steps, peak learning rate {recipe.get('lr')}, "
        f"{recipe.get('schedule')} decay), the loss "
        f"{1 - teacher['distill_weight']:g} x that cross-entropy + "
        f"{teacher['distill_weight']:g} x T² KL(teacher ‖ student) at T = "
        f"{teacher['distill_temperature']:g} on every pixel of the crop; the teacher a SegNet "
        f"of width {teacher['arch']['params'].get('width', 1.0):g} trained by the recipe above "
        "on all of CamVid train"
        + ("" if t_iou is None else f" (val mean IoU {_pct(t_iou)})")
        + ", the bundled model until 2026-12-04.",
    ]


def render(
    model: Path,
    bench: dict[str, Any],
    ckpt: dict[str, Any] | None,
    others: Sequence[dict[str, Any]] = (),
    data_note: str = "",
    source: str = "",
) -> str:
    info = read_model_info(model)
    prov = info.provenance
    distilled = prov.get("teacher") and prov.get("parent")
    # a distilled model: the recipe of its from-scratch stage, then the distillation
    first = prov["parent"]["provenance"] if distilled else prov
    recipe = first.get("recipe", {})
    q = bench["quality"]
    machine = bench["machine"]
    names = q["class_names"]
    train_s = training_seconds(prov, ckpt)
    if distilled:
        train_s += float(first.get("duration_s") or 0.0)
    width = info.arch.params.get("width", 1.0)
    ious = [(iou, n) for n, iou in zip(names, q["per_class_iou"], strict=True) if iou is not None]
    weakest = [n for _, n in sorted(ious)[:4]]
    same_host = prov.get("host") == machine.get("host")
    where = (
        f"{machine['cpu']} ({machine['cores']} cores), the machine of the figures below"
        if same_host
        else f"host {prov.get('host', '?')}"
    )
    weights = first.get("class_weights") or []
    weighting = {
        "median_frequency": "median-frequency class weights (as in the SegNet paper), from the "
        "training labels: " + ", ".join(f"{n} {w:g}" for n, w in zip(names, weights, strict=False)),
        "none": "no class weights",
    }.get(recipe.get("class_weighting"), str(recipe.get("class_weighting")))
    if distilled:
        command = "\n".join(
            (
                train_command(info, q.get("void"), first, "student", source),
                train_command(info, q.get("void"), prov, "model", source),
            )
        )
    else:
        command = train_command(info, q.get("void"), source=source)
    lines = [
        "# Model card: the bundled CamVid SegNet",
        "",
        f"`{model.name}` is the model SegStudio uses out of the box for projects whose",
        "classes are CamVid's 11 (and `segstudio predict`/`eval` without `--model`). For a",
        "project with other classes, the first fine-tune starts from its encoder with a new head.",
        "This card is written by `tools/model_card.py` from measurements; do not edit figures.",
        "",
        "| | |",
        "| --- | --- |",
        f"| Architecture | SegNet (VGG16-BN encoder, decoder unpooling with the encoder's "
        f"max-pooling indices), channel width {width:g}: {bench['parameters'] / 1e6:.2f} M "
        "parameters |",
        f"| File | {bench['file_bytes'] / 1e6:.1f} MB, safetensors, {_weight_dtypes(model)} "
        "weights, JSON metadata (no pickle) |",
        f"| Classes | {', '.join(names)}"
        + ("" if q.get("void") is None else f"; label {q['void']} (void) is ignored")
        + " |",
        "| Input | RGB of any size; images above 1024 px are predicted in seamless tiles |",
        f"| Made | {prov.get('created', '?')} with SegStudio {prov.get('segstudio_version', '?')}, "
        f"PyTorch {prov.get('torch_version', '?')} |",
        "",
        "## Data",
        "",
        f"CamVid as distributed with SegNet (`{source or prov.get('source', '?')}`): trained "
        "on the",
        f"{prov.get('train_images', '?')} images of `train/` (480 x 360), validated on the "
        f"{prov.get('val_images', '?')} of `val/`." + (f" {data_note}" if data_note else ""),
        "The validation split was used to follow training and to choose the recipe; the model",
        "kept is the final one of the run, not the best of its epochs. The test split was not",
        "used.",
        "",
        "## Recipe",
        "",
        "```",
        command,
        "```",
        "",
        f"- From scratch (no ImageNet weights: nothing is downloaded), seed {recipe.get('seed')}.",
        f"- {recipe.get('epochs')} epochs, batch {recipe.get('batch_size')}, random "
        f"{recipe.get('crop')} x {recipe.get('crop')} crops; {first.get('steps')} steps.",
        f"- {str(recipe.get('optimizer', '')).upper()}, peak learning rate {recipe.get('lr')}, "
        f"weight decay {recipe.get('weight_decay')}, {recipe.get('warmup_steps')} warm-up "
        f"steps, then {recipe.get('schedule')} decay to 1 % of the peak.",
        f"- Cross-entropy with {weighting}.",
        "- Augmentation: random scale 0.75–1.5, rotation ±10°, horizontal flip, colour jitter,",
        "  blur and noise (`segstudio.training.augment`).",
        f"- Device {first.get('device')}, precision {first.get('precision')} "
        "(float32 master weights).",
        *(_distill_lines(prov) if distilled else []),
        "",
        "## Training time and machine",
        "",
        f"{_duration(train_s)} of training (device {prov.get('device')}) on {where}, counting "
        "every run it was resumed in.",
        "",
        "## Validation: CamVid val",
        "",
        f"{q['images']} images, void pixels ignored, computed in float32: `segstudio eval "
        "../shared/data/camvid/val --precision fp32` prints these figures (without "
        "`--precision`, eval uses the path the CPU is fastest in; each path's mean IoU is "
        "under Speed).",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| pixel accuracy | {_pct(q['pixel_accuracy'])} |",
        f"| mean class accuracy | {_pct(q['mean_accuracy'])} |",
        f"| **mean IoU** | **{_pct(q['mean_iou'])}** |",
        f"| frequency-weighted IoU | {_pct(q['fw_iou'])} |",
        "",
        "| class | IoU | accuracy |",
        "| --- | --- | --- |",
    ]
    for name, iou, acc in zip(names, q["per_class_iou"], q["per_class_accuracy"], strict=True):
        lines.append(f"| {name} | {_pct(iou)} | {_pct(acc)} |")
    lines += ["", "## Speed: 480 x 360", "", *_speed_lines([bench, *others]), ""]
    lines += [
        "## Limits",
        "",
        f"- {prov.get('train_images', '?')} training frames of daytime driving in Cambridge, "
        "UK, from one camera (CamVid): expect weaker masks at night, in rain, in other",
        "  countries and from other cameras; fine-tune on a few corrected images of your own.",
        f"- The weakest classes on val: {', '.join(weakest)} (IoU above).",
        "",
        "## Reproduce",
        "",
        "```",
        "tools/make_bundled_model.sh [CAMVID_FOLDER] [WORK_FOLDER]",
        "```",
        "",
        "Run it again after an interruption: training resumes from its checkpoint.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument(
        "--bench",
        required=True,
        nargs="+",
        help="JSON from benchmarks/bench_bundled.py: quality from the first; one speed row each",
    )
    ap.add_argument("--checkpoint", help="the training's checkpoint folder (training time)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--data-note", default="", help="a sentence on the data, after its counts")
    ap.add_argument("--source", default="", help="the data folder as the card names it")
    args = ap.parse_args()
    ckpt = None
    if args.checkpoint:
        from segstudio.training.loop import checkpoint_info

        ckpt = checkpoint_info(Path(args.checkpoint))
    bench, *others = [json.loads(Path(b).read_text()) for b in args.bench]
    atomic_write_text(
        Path(args.out), render(Path(args.model), bench, ckpt, others, args.data_note, args.source)
    )


if __name__ == "__main__":
    main()
