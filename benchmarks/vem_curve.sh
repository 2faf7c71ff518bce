#!/usr/bin/env bash
# Does the small model's diffusion phase learn real music when given more steps? A learning curve on
# the data of benchmarks/train_small.sh (64 sample ads + 160 paired real-music clips): phases vae 250
# and aligner 300 as there, then the diffusion phase stopped at 1200 steps of a 3600-step learning-rate
# schedule (--schedule-steps: where a 3600-step run is at its step 1200), checkpointed every 600 steps.
# Each checkpoint (its weights as trained, no EMA; Griffin-Lim; the adapter not yet trained) generates for the
# held-out real-music clips and for 12 training clips (benchmarks/vem_evidence.py): mode against the
# mood, tempo, sync, Fréchet distances, spectrograms. One line per checkpoint and split at the end.
#   benchmarks/vem_curve.sh [WORK_DIR]          (default: work/vem-curve; CLIPS, PIECES: as train_small.sh's;
#                                              HELD_OUT=DIR: another paired folder's held-out clips, e.g. the 160-clip run's;
#                                              DIFF_STEPS=N: stop the diffusion phase at N instead of 1200, a multiple of 600)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-work/vem-curve}
PY=.venv/bin/python
DIFF_STEPS=${DIFF_STEPS:-1200}
if (( DIFF_STEPS % 600 != 0 )); then
  echo "DIFF_STEPS must be a multiple of 600 (the curve's checkpoints), got $DIFF_STEPS" >&2; exit 2
fi
DATA_ONLY=1 benchmarks/train_small.sh "$W"
train() {
  $PY -m jobs train --data "$W/data" --output "$W/model" --preset small --workers 2 --batch-size 8 \
      --log-every 20 --val-clips 4 --holdout 0.2 --workdir "$W/mlflow" "$@"
}
train --phase vae --steps 250 --checkpoint-every 250
train --phase aligner --steps 300 --checkpoint-every 300
# --ema 0: each checkpoint holds the weights as trained at that step (the EMA would replace the last one's)
train --phase diffusion --steps "$DIFF_STEPS" --schedule-steps 3600 --checkpoint-every 600 --ema 0  # keeps the last two checkpoints (600 and 1200 by default)
for ck in "$W"/model/checkpoints/step-*; do
  n=$(basename "$ck")
  $PY benchmarks/vem_evidence.py --model "$ck" --catalog "${HELD_OUT:-$W/paired}" --holdout 0.2 --no-long --pngs 3 --procs 2 \
      --out "$W/evidence/$n-held-out" > /dev/null
  $PY benchmarks/vem_evidence.py --model "$ck" --catalog "$W/paired" --holdout 0.2 --split train --limit 12 --no-long \
      --pngs 2 --procs 2 --out "$W/evidence/$n-train" > /dev/null
done
$PY - "$W/evidence" <<'PY'
import json, sys
from collections import Counter
from pathlib import Path
for d in sorted(Path(sys.argv[1]).iterdir()):
    s, clips = json.loads((d / "summary.json").read_text()), json.loads((d / "clips.json").read_text())
    per = Counter((c["mood"], c["gen_mode"]) for c in clips)
    print(f"{d.name}: {s['held_out_videos']} clips, mode agrees {s['mode_agrees_with_mood']} (bright->major "
          f"{per['bright', 'major']}/{per['bright', 'major'] + per['bright', 'minor']}, dark->minor "
          f"{per['dark', 'minor']}/{per['dark', 'minor'] + per['dark', 'major']}), tempo {s['tempo_within_8pct_of_plan']}, "
          f"cut_beat_hit {s['cut_beat_hit']} (truth {s['cut_beat_hit_truth']}), FD ours {s['fd_ours']} "
          f"vs shuffled {s['fd_shuffled_conditions']}")
PY
