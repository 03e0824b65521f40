#!/usr/bin/env bash
# Train several zoo agents at once on a many-core machine (e.g. the 16-core GPU machine), each
# `relreps train` with its share of the cores as environment processes; resumable like
# train_zoo.sh (an existing run folder continues from its checkpoint). Same settings as
# train_zoo.sh (seed 1, 16 environments, scripted-3136 anchors); it neither evaluates on the 10
# held-out tracks nor ships: run train_zoo.sh afterwards (with the same RUNS) for that.
# Usage: [STEPS=2000000] [RUNS=runs] [ANCHORS=scripted-3136] [WORKERS=cores/agents] \
#        scripts/train_parallel.sh abs-blue rel-blue ...     # logs: $RUNS/<name>.log
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: scripts/train_parallel.sh abs-COLOUR|rel-COLOUR ..." >&2; exit 2; }
STEPS=${STEPS:-2000000}
RUNS=${RUNS:-runs}
ANCHORS=${ANCHORS:-scripted-3136}
WORKERS=${WORKERS:-$(( $(nproc) / $# > 0 ? $(nproc) / $# : 1 ))}
mkdir -p "$RUNS"
pids=()
for spec in "$@"; do
  rep=${spec%%-*}; color=${spec#*-}
  case $rep in
    abs) name=ppo-abs-$color; args=(--representation absolute) ;;
    rel) name=ppo-rel-$color; args=(--representation relative --anchors "$ANCHORS") ;;
    *) echo "error: $spec: expected abs-COLOUR or rel-COLOUR" >&2; exit 2 ;;
  esac
  if [ -f "$RUNS/$name/done.json" ]; then echo "== $name: finished"; continue; fi
  resume=(); [ -f "$RUNS/$name/config.json" ] && resume=(--resume)
  echo "== $name: training with $WORKERS environment processes ($(date -u +%H:%M:%S)) ${resume[*]}"
  OMP_NUM_THREADS=1 relreps train --out "$RUNS/$name" "${args[@]}" --color "$color" --seed 1 \
    --steps "$STEPS" --workers "$WORKERS" "${resume[@]}" > "$RUNS/$name.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
