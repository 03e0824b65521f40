#!/usr/bin/env bash
# Train the shipped zoo: 8 PPO agents (4 colours x absolute/relative, seed 1), in this order:
#   1. ppo-abs-green; 2. the anchor set "agent-3136", recorded by ppo-abs-green driving with
#   random-action bursts and replayed in all colours (the paper's recipe); 3. the other 7 agents.
# Every finished run is shipped into relreps/data/zoo (agent + learning-curve logs).
# Resumable: run it again after an interruption; finished steps are skipped, an interrupted run
# continues from its last checkpoint.  Usage: [STEPS=1000000] [RUNS=runs] scripts/train_zoo.sh
set -euo pipefail
STEPS=${STEPS:-1000000}
RUNS=${RUNS:-runs}
ANCHORS=${ANCHORS:-agent-3136}
ORDER=${ORDER:-"rel-green rel-red abs-red rel-blue abs-blue rel-yellow abs-yellow"}
mkdir -p "$RUNS"
exec 9>"$RUNS/.train_zoo.lock"
flock -n 9 || { echo "error: another train_zoo.sh is running on $RUNS" >&2; exit 1; }
ZOO=$(python -c "import relreps.zoo as z; print(z.zoo_dir())")
ANCHOR_DIR=$(python -c "import relreps.anchors as a; print(a.SHIPPED_DIR)")/$ANCHORS

train() {  # train NAME REPRESENTATION COLOUR [extra relreps train args]
  local name=$1 rep=$2 color=$3; shift 3
  if [ -f "$ZOO/$name.json" ]; then echo "== $name: already in the zoo"; return; fi
  local resume=""
  if [ -f "$RUNS/$name/config.json" ]; then resume=--resume; fi
  if [ ! -f "$RUNS/$name/done.json" ]; then
    echo "== $name: training ($(date -u +%H:%M:%S)) $resume"
    relreps train --out "$RUNS/$name" --representation "$rep" --color "$color" --seed 1 \
      --steps "$STEPS" "$@" $resume
  fi
  relreps zoo ship "$RUNS/$name" "$name"
}

train ppo-abs-green absolute green
if [ ! -f "$ANCHOR_DIR/anchors.json" ]; then
  echo "== anchors $ANCHORS: recorded by ppo-abs-green"
  relreps anchors collect "$ANCHORS" --driver ppo-abs-green --out "$ANCHOR_DIR"
fi
for spec in $ORDER; do
  rep=${spec%%-*}; color=${spec#*-}
  if [ "$rep" = rel ]; then
    train "ppo-rel-$color" relative "$color" --anchors "$ANCHORS"
  else
    train "ppo-abs-$color" absolute "$color"
  fi
done
echo "== zoo complete: $(relreps zoo list | wc -l) agents"
