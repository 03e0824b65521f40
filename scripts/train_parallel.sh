#!/usr/bin/env bash
# Train several zoo agents at once on a many-core GPU machine (e.g. 16 cores; each agent's network on the GPU),
# each `relreps train` with its share of the cores as environment processes; resumable like
# train_zoo.sh (an existing run folder continues from its checkpoint). Same settings as
# train_zoo.sh (seed 1, 16 environments, scripted-3136 anchors); it neither evaluates on the 10
# held-out tracks nor ships: run train_zoo.sh afterwards, with the same RUNS, for that.
# Each process uses one torch thread (THREADS): on a CPU-only machine PPO's update is most of the
# time, and two jobs with one thread each beat one job with two (the book's lab notes, "Training speed").
# Ctrl-C or killing the script stops its training processes (their checkpoints stay).
# Usage: [STEPS=2000000] [RUNS=runs] [ANCHORS=scripted-3136] [WORKERS=cores/agents] [THREADS=1] \
#        scripts/train_parallel.sh abs-blue rel-blue ...     # logs: $RUNS/<name>.log (appended)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: scripts/train_parallel.sh abs-COLOUR|rel-COLOUR ..." >&2; exit 2; }
STEPS=${STEPS:-2000000}
RUNS=${RUNS:-runs}
ANCHORS=${ANCHORS:-scripted-3136}
THREADS=${THREADS:-1}
WORKERS=${WORKERS:-$(( $(nproc) / $# > 0 ? $(nproc) / $# : 1 ))}
colors=$(python -c "from relreps.envs import COLORS; print(' '.join(COLORS))")
for spec in "$@"; do  # all names checked before anything starts
  rep=${spec%%-*}; color=${spec#*-}
  if [[ ! $spec == *-* || ! " abs rel " == *" $rep "* || ! " $colors " == *" $color "* ]]; then
    echo "error: $spec: expected abs-COLOUR or rel-COLOUR, COLOUR one of: $colors" >&2; exit 2
  fi
done
mkdir -p "$RUNS"
pids=()
trap 'echo "stopping the training processes" >&2; kill ${pids[@]+"${pids[@]}"} 2>/dev/null; exit 130' INT TERM
for spec in "$@"; do
  rep=${spec%%-*}; color=${spec#*-}
  if [ "$rep" = abs ]; then name=ppo-abs-$color; args=(--representation absolute)
  else name=ppo-rel-$color; args=(--representation relative --anchors "$ANCHORS"); fi
  if [ -f "$RUNS/$name/done.json" ]; then echo "== $name: finished"; continue; fi
  resume=(); [ -f "$RUNS/$name/config.json" ] && resume=(--resume)
  echo "== $name: training with $WORKERS environment processes ($(date -u +%H:%M:%S)) ${resume[*]-}"
  OMP_NUM_THREADS=$THREADS relreps train --out "$RUNS/$name" "${args[@]}" --color "$color" --seed 1 \
    --steps "$STEPS" --workers "$WORKERS" ${resume[@]+"${resume[@]}"} >> "$RUNS/$name.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in ${pids[@]+"${pids[@]}"}; do wait "$pid" || status=1; done
exit $status
