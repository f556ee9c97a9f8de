#!/usr/bin/env bash
# Reproduces the bundled model, resources/camvid_segnet.safetensors, and its model card.
#
#   tools/make_bundled_model.sh [CAMVID_FOLDER] [WORK_FOLDER]
#
# The bundled model is a quarter-width SegNet distilled from a half-width one:
#   1. the teacher: SegNet width 0.5, 150 epochs on all 367 CamVid training frames;
#   2. the student: SegNet width 0.25, the same recipe, on the training frames without
#      drive 0001TP (62 dusk frames), held out to judge the recipe on a drive it never saw;
#   3. distillation: 25 more epochs of the student, its loss half cross-entropy, half
#      the teacher's outputs on every pixel;
#   4. float16 weights and an int8 calibration, the benchmarks, the card.
# CAMVID_FOLDER defaults to ../shared/data/camvid (train/ trainannot/ val/ valannot/
# classes.json); WORK_FOLDER (checkpoints, full-precision models, benchmark JSON) to
# ~/.cache/segstudio/bundled-camvid. Training takes hours on a CPU; when it is
# interrupted (a closed session, a reboot), run the same command again: each stage
# resumes from its checkpoint, which is written every minute.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# the folders as given, relative to where the command is run
DATA=$(realpath -m "${1:-$REPO/../shared/data/camvid}")
WORK=$(realpath -m "${2:-${XDG_CACHE_HOME:-$HOME/.cache}/segstudio/bundled-camvid}")
cd "$REPO"
mkdir -p "$WORK"
RECIPE=(--epochs 150 --batch-size 4 --crop 320 --lr 1e-3 --void 11 --seed 0)

# train_once NAME ARGS...: `segstudio train ARGS` into $WORK/NAME.safetensors, resuming
# from $WORK/NAME.ckpt; nothing when that model is already there
train_once() {
    local name=$1
    shift
    if [ ! -f "$WORK/$name.safetensors" ]; then
        segstudio train "$@" --checkpoint-dir "$WORK/$name.ckpt" \
            --out "$WORK/$name.safetensors" --resume
    fi
}

TEACHER="$WORK/teacher.safetensors"
train_once teacher "$DATA" --arch segnet --width 0.5 "${RECIPE[@]}"

# CamVid without drive 0001TP: links to the frames, in the work folder
HELD="$WORK/camvid_without_0001TP"
if [ ! -d "$HELD/train" ]; then
    mkdir -p "$HELD/train" "$HELD/trainannot"
    for f in "$DATA"/train/*.png; do
        name=$(basename "$f")
        case "$name" in 0001TP_*) continue ;; esac
        ln -sf "$f" "$HELD/train/$name"
        ln -sf "$DATA/trainannot/$name" "$HELD/trainannot/$name"
    done
    ln -sfn "$DATA/val" "$HELD/val"
    ln -sfn "$DATA/valannot" "$HELD/valannot"
    ln -sf "$DATA/classes.json" "$HELD/classes.json"
fi
STUDENT="$WORK/student.safetensors"
train_once student "$HELD" --arch segnet --width 0.25 "${RECIPE[@]}"
TRAINED="$WORK/model.safetensors"
train_once model "$HELD" --init "$STUDENT" --teacher "$TEACHER" --recipe full \
    --distill-weight 0.5 --epochs 25 --batch-size 4 --crop 320 --lr 3e-4 --void 11 --seed 0
# float16 weights, and an int8 calibration on 16 training images spread over the drives
# (CPUs without bf16 units then predict in int8: see segstudio/model/quantize.py)
segstudio model convert "$TRAINED" --half --calibrate "$HELD/train" --overwrite \
    --out resources/camvid_segnet.safetensors
# speed on this CPU as it is, and capped at AVX2 (what most laptops have) where it has more
BENCH=(python benchmarks/bench_bundled.py --model resources/camvid_segnet.safetensors
       --data "$DATA" --threads 2)
"${BENCH[@]}" > "$WORK/bench_bundled.json"
ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 "${BENCH[@]}" > "$WORK/bench_bundled_avx2.json"
# the card states the recipe the model file records, and what was measured just now
python tools/model_card.py --model resources/camvid_segnet.safetensors \
    --checkpoint "$WORK/model.ckpt" \
    --bench "$WORK/bench_bundled.json" "$WORK/bench_bundled_avx2.json" \
    --data-note "Drive 0001TP (62 dusk frames of train/) was left out, to judge the recipe on a drive the model never saw." \
    --source CAMVID_WITHOUT_0001TP \
    --out resources/camvid_segnet.md
cat resources/camvid_segnet.md
