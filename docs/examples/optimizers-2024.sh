#!/usr/bin/env bash
# The study of docs/optimizers-2024.md: every optimizer tuned by `npoptim sweep` on the same budget, the
# best rerun over 5 fresh seeds, on the book's network (2 hidden ReLU layers of 100 here, not the book's 4).
#   full: lr plus each optimizer's table of hyperparameters (--space full), random search;
#   lr:   lr alone on a fixed log-spaced grid from 1e-4 to 10: the lr-sensitivity curves.
# Budgets (settings per optimizer, the same for every optimizer of a sweep): digits 16, MNIST 8 (each MNIST
# run costs about 3x a digits run; this keeps the whole study near 15-20 minutes on 2 shared cores).
# On digits always; on the MNIST test-set split too when a directory with its IDX files is given.
# Usage: docs/examples/optimizers-2024.sh OUTDIR [MNIST_DIR]
set -euo pipefail
out=${1:?usage: $0 OUTDIR [MNIST_DIR]}
mnist=${2:-}
mkdir -p "$out"
opts="sgd momentum rmsprop adam adamw lion schedulefree-adamw muon+adamw lamb lars adafactor prodigy"
common=(--optimizers $opts --steps 500 --seeds 5 --hidden 100,100 --batch-size 128 --lr-range 1e-4 10
        --n-jobs 2 --quiet)
problems=(digits)
if [[ -n "$mnist" ]]; then problems+=(mnist); fi
for p in "${problems[@]}"; do
  extra=()
  budget=16
  if [[ "$p" == mnist ]]; then extra=(--data-dir "$mnist"); budget=8; fi
  npoptim sweep --problems "$p" "${extra[@]}" "${common[@]}" --search random --space full --budget "$budget" \
    --db "$out/$p-full.db" --out "$out/$p-full"
  npoptim sweep --problems "$p" "${extra[@]}" "${common[@]}" --search grid --space lr --budget "$budget" \
    --db "$out/$p-lr.db" --out "$out/$p-lr"
done
