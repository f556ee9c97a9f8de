#!/usr/bin/env bash
# Reproduces the bundled model, resources/camvid_segnet.safetensors, and its model card.
#
#   tools/make_bundled_model.sh [CAMVID_FOLDER] [WORK_FOLDER]
#
# CAMVID_FOLDER defaults to ../shared/data/camvid (train/ trainannot/ val/ valannot/
# classes.json); WORK_FOLDER (checkpoint, full-precision model, benchmark JSON) to
# ~/.cache/segstudio/bundled-camvid. Training takes hours on a CPU; when it is
# interrupted (a closed session, a reboot), run the same command again: it resumes
# from the checkpoint, which is written every minute.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# the folders as given, relative to where the command is run
DATA=$(realpath -m "${1:-$REPO/../shared/data/camvid}")
WORK=$(realpath -m "${2:-${XDG_CACHE_HOME:-$HOME/.cache}/segstudio/bundled-camvid}")
cd "$REPO"
mkdir -p "$WORK"
TRAINED="$WORK/camvid_segnet_w05.safetensors"
TRAIN=(segstudio train "$DATA" --arch segnet --width 0.5 --epochs 150 --batch-size 4
       --crop 320 --lr 1e-3 --void 11 --seed 0
       --checkpoint-dir "$WORK" --out "$TRAINED")

if [ ! -f "$TRAINED" ]; then
    "${TRAIN[@]}" --resume  # a new run when there is no checkpoint yet
fi
# float16 weights, and an int8 calibration on 16 training images spread over the drives
# (CPUs without bf16 units then predict in int8: see segstudio/model/quantize.py)
segstudio model convert "$TRAINED" --half --calibrate "$DATA/train" --overwrite \
    --out resources/camvid_segnet.safetensors
# speed on this CPU as it is, and capped at AVX2 (what most laptops have) where it has more
BENCH=(python benchmarks/bench_bundled.py --model resources/camvid_segnet.safetensors
       --data "$DATA" --threads 2)
"${BENCH[@]}" > "$WORK/bench_bundled.json"
ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 "${BENCH[@]}" > "$WORK/bench_bundled_avx2.json"
# the card states the recipe the model file records, and what was measured just now
python tools/model_card.py --model resources/camvid_segnet.safetensors --checkpoint "$WORK" \
    --bench "$WORK/bench_bundled.json" "$WORK/bench_bundled_avx2.json" \
    --out resources/camvid_segnet.md
cat resources/camvid_segnet.md
