#!/usr/bin/env bash
# Train one agent on a GPU machine in one go: the networks on the GPU under `--precision auto`
# (bf16 autocast on a GPU with native bfloat16, fp16 with a gradient scaler on older ones such
# as a T4), 16 environments in 16 environment processes (one per core on a 16-core machine).
# Before training it checks the GPU, then times a short side-by-side `relreps bench train --device
# cuda` (stock SB3, fp32, auto; about a minute) into $RUNS/<name>.bench.txt (a new file if one exists); the training log is
# $RUNS/<name>.log and its steps/s end up in the run's done.json. Resumable: an existing run
# folder continues from its checkpoint.
# Usage: [STEPS=2000000] [RUNS=runs] [ENVS=16] [WORKERS=16] [SEED=1] [PRECISION=auto] [BENCH=1] \
#        scripts/train_gpu.sh abs-COLOUR|rel-COLOUR
# Setup on a fresh machine (a CUDA build of torch first, then the rest):
#   pip install torch && pip install -r requirements.txt && pip install -e .
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: scripts/train_gpu.sh abs-COLOUR|rel-COLOUR" >&2; exit 2; }
STEPS=${STEPS:-2000000}
RUNS=${RUNS:-runs}
ENVS=${ENVS:-16}
WORKERS=${WORKERS:-16}
SEED=${SEED:-1}
PRECISION=${PRECISION:-auto}
BENCH=${BENCH:-1}
spec=$1
rep=${spec%%-*}; color=${spec#*-}
colors=$(python -c "from relreps.envs import COLORS; print(' '.join(COLORS))")
if [[ ! $spec == *-* || ! " abs rel " == *" $rep "* || ! " $colors " == *" $color "* ]]; then
  echo "error: $spec: expected abs-COLOUR or rel-COLOUR, COLOUR one of: $colors" >&2; exit 2
fi
python - "$PRECISION" <<'EOF'
import sys, torch
from relreps.precision import resolve
if not torch.cuda.is_available():
    sys.exit("error: torch sees no GPU (a CPU-only torch build, or no driver): install a CUDA build of torch")
print(f"GPU: {torch.cuda.get_device_name(0)}; precision {sys.argv[1]!r} resolves to {resolve(sys.argv[1], 'cuda')!r}")
EOF
if [ "$rep" = abs ]; then name=ppo-abs-$color; args=(--representation absolute)
else name=ppo-rel-$color; args=(--representation relative); fi
[ "$SEED" = 1 ] || name=$name-s$SEED
mkdir -p "$RUNS"
if [ "$BENCH" = 1 ]; then
  echo "== bench: relreps bench train --device cuda --variants sb3 fp32 auto --workers $WORKERS" \
    "--envs $ENVS --eval-tracks 1 --eval-max-steps 200"
  bench="$RUNS/$name.bench.txt"  # a new file each time: an earlier measurement is kept, not replaced
  [ ! -e "$bench" ] || bench="$RUNS/$name.bench.$(date -u +%Y%m%dT%H%M%S).txt"
  relreps bench train --device cuda --variants sb3 fp32 auto --workers "$WORKERS" --envs "$ENVS" \
    --eval-tracks 1 --eval-max-steps 200 | tee "$bench.part"
  mv "$bench.part" "$bench"
fi
if [ -f "$RUNS/$name/done.json" ]; then echo "== $name: finished"; exit 0; fi
resume=(); [ -f "$RUNS/$name/config.json" ] && resume=(--resume)
echo "== $name: $STEPS steps, $ENVS environments in $WORKERS processes, device cuda, precision $PRECISION" \
  "($(date -u +%H:%M:%S)) ${resume[*]-}"
start=$(date +%s)
relreps train --out "$RUNS/$name" "${args[@]}" --color "$color" --seed "$SEED" --steps "$STEPS" \
  --envs "$ENVS" --workers "$WORKERS" --device cuda --precision "$PRECISION" \
  ${resume[@]+"${resume[@]}"} >> "$RUNS/$name.log" 2>&1
echo "== $name: done in $(( $(date +%s) - start )) s (evaluations included)"
python -c "import json,sys; d=json.load(open(sys.argv[1])); print({k: d[k] for k in ('steps','wall_s','steps_per_s','precision')})" \
  "$RUNS/$name/done.json"
