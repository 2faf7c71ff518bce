#!/usr/bin/env bash
# VeM small weights from a 64-ad sample catalog (seed 1) and 160 clips of real
# music paired with footage of photographs (python -m jobs paired, seed 1: music21 scores played by
# General MIDI ensembles of their mood, cut on their beats), preprocessed into one example folder,
# then the four training phases of the small preset and the learned vocoder, one after another
# (each phase is a rerun of the same job: it continues from the previous phase's checkpoint), on
# 2 CPU Ray Train workers (DDP). The step counts fill the issue's budget of 45 min for the whole
# command on 2 cores. Then the held-out evidence (benchmarks/vem_evidence.py) on the ads and on the
# clips the train job held out, and the vocoder against Griffin-Lim (benchmarks/vocoder_bench.py).
# The small preset's log-mel has 128 bands (vem/presets.py says why); preprocess --preset small
# makes examples of it. A rerun skips what is done (the data, preprocessed clips, finished phases).
# The committed models/vem-small weights come from this script as it was at bcff091 (catalog only):
# run as it is now (41.6 min), it made weights worse on the ads' sync, not committed (README).
#   benchmarks/train_small.sh [WORK_DIR]          (default: work/train-small; DATA_ONLY=1: stop after preprocessing;
#                                                  CLIPS=N, PIECES=N: real-music clips and pieces per kind, default 160, 30)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-work/train-small}
PY=.venv/bin/python
[ -f "$W/catalog/ground_truth.parquet" ] || $PY -m jobs sample --out "$W/catalog" --videos 64 --seed 1 --composers none --workdir "$W/mlflow"
$PY -m jobs paired --out "$W/paired" --clips "${CLIPS:-160}" --seed 1 --pieces-per-kind "${PIECES:-30}" --holdout 0.2 --workdir "$W/mlflow"
$PY -m jobs preprocess --input "$W/catalog/videos" --output "$W/data" --preset small --workdir "$W/mlflow"
$PY -m jobs preprocess --input "$W/paired/videos" --output "$W/data" --preset small --workdir "$W/mlflow"
[ "${DATA_ONLY:-0}" = 1 ] && exit 0  # the examples only (benchmarks/vem_curve.sh trains on them its own way)
train() {
  $PY -m jobs train --data "$W/data" --output "$W/model" --preset small --workers 2 --batch-size 8 \
      --checkpoint-every 100 --log-every 20 --val-clips 4 --holdout 0.2 --register vem-small --workdir "$W/mlflow" "$@"
}
time train --phase vae --steps 250
time train --phase aligner --steps 300
time train --phase diffusion --steps 1200
time train --phase adapter --steps 200
time train --phase vocoder --steps 1200
$PY benchmarks/vem_evidence.py --model "$W/model/model" --catalog "$W/catalog" --holdout 0.2 --out "$W/evidence" --procs 2
$PY benchmarks/vem_evidence.py --model "$W/model/model" --catalog "$W/paired" --holdout 0.2 --out "$W/evidence-paired" \
    --procs 2 --no-long
$PY benchmarks/vocoder_bench.py --model "$W/model/model" --clips "$W/paired/ground_truth.parquet" --out "$W/vocoder"
echo "weights: $W/model/model  (copy to models/vem-small to commit)"
