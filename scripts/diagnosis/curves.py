"""Diagnosis (not part of the package): a pilot's learning curves from its run folders, as one CSV.
Usage:

    python scripts/diagnosis/curves.py [--since STEPS] RUN [RUN ...] > results/diagnosis/curves-TAG.csv

One row per PPO update of each run (SB3's ``progress.csv``): the run's folder name, the environment
steps, the mean return of the training episodes that ended in the last 100 (sampled actions), the
entropy loss (minus the policy's mean entropy), the value loss and the value function's explained
variance; and one row per evaluation (``eval.csv``: greedy
actions on the held-out tracks, the mean maximum return), with ``kind`` telling the two apart.
``--since STEPS``: only the rows from that step on (a run continued from another's checkpoint
holds the origin's rows too).
"""

import csv
import sys
from pathlib import Path


def main(runs: list[str], since: int = 0) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["run", "kind", "timesteps", "return", "entropy_loss", "value_loss", "explained_variance"])
    for run in map(Path, runs):
        with (run / "progress.csv").open() as f:
            for r in csv.DictReader(f):
                if r.get("rollout/ep_rew_mean") and int(r["time/total_timesteps"]) >= since:
                    out.writerow([run.name, "training (sampled)", r["time/total_timesteps"],
                                  f"{float(r['rollout/ep_rew_mean']):.1f}", r.get("train/entropy_loss", ""),
                                  r.get("train/value_loss", ""), r.get("train/explained_variance", "")])
        if not (run / "eval.csv").exists():  # no evaluation yet
            continue
        with (run / "eval.csv").open() as f:
            for r in csv.DictReader(f):
                if int(r["timesteps"]) < since:
                    continue
                out.writerow([run.name, f"evaluation (greedy, {r['tracks']} tracks)", r["timesteps"],
                              f"{float(r['mean_max_return']):.1f}", "", "", ""])


if __name__ == "__main__":
    args = sys.argv[1:]
    since = 0
    if args[:1] == ["--since"]:
        if len(args) < 2 or not args[1].isdigit():
            sys.exit("--since needs a number of steps\n" + __doc__)
        since, args = int(args[1]), args[2:]
    if not args:
        sys.exit(__doc__)
    main(args, since)
