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
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/camvid}
WORK=${2:-${XDG_CACHE_HOME:-$HOME/.cache}/segstudio/bundled-camvid}
mkdir -p "$WORK"
TRAINED="$WORK/camvid_segnet_w05.safetensors"
TRAIN=(segstudio train "$DATA" --arch segnet --width 0.5 --epochs 150 --batch-size 4
       --crop 320 --lr 1e-3 --void 11 --seed 0
       --checkpoint-dir "$WORK" --out "$TRAINED")

if [ ! -f "$TRAINED" ]; then
    "${TRAIN[@]}" --resume  # a new run when there is no checkpoint yet
fi
segstudio model convert "$TRAINED" --half --out resources/camvid_segnet.safetensors
python benchmarks/bench_bundled.py --model resources/camvid_segnet.safetensors \
    --data "$DATA" > "$WORK/bench_bundled.json"
python tools/model_card.py --model resources/camvid_segnet.safetensors \
    --bench "$WORK/bench_bundled.json" --checkpoint "$WORK" \
    --command "${TRAIN[*]/#$WORK/WORK_FOLDER} --resume" --out resources/camvid_segnet.md
cat resources/camvid_segnet.md
