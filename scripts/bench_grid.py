#!/usr/bin/env python
"""The same 4-run grid of short runs, three ways, wall time side by side, and Ray's overhead per run.

1. ``sequential``: ``relreps train`` four times, one after another (one process per run);
2. ``grid, 1 at a time``: the grid through :func:`relreps.grid.run_grid` on a local Ray limited to
   one CPU, one CPU per run: the same concurrency as (1), so the difference is Ray's cost;
3. ``grid, all cores``: ``relreps grid SPEC --out DIR`` (a local Ray on all the machine's cores,
   one CPU per run: as many runs at once as there are cores).

Every run is the tests' tiny config (tests/tiny.py: relative PPO, 2 environments in the training
process, 16 anchors, 16-unit encoder and head) with ``--steps`` steps, on red, green, blue and
yellow (seed 3), one torch thread. Ray's overhead per run is ``(wall of 2 - wall of 1) / 4``, split
into Ray's start-up (once per grid) and the rest; each run's own training time is its
``done.json``'s ``wall_s`` (which counts from the run's start to its end, final evaluation
included). Writes the report to ``--out`` (refused if it exists, unless ``--overwrite``).

    OMP_NUM_THREADS=1 python scripts/bench_grid.py --out results/bench-grid.txt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from relreps import files

COLORS = ("red", "green", "blue", "yellow")
#: The tests' tiny run (tests/tiny.py), as relreps train's options and as a grid spec.
TINY_OPTIONS = ["--representation", "relative", "--seed", "3", "--envs", "2", "--workers", "0", "--n-anchors", "16",
                "--latent-dim", "16", "--head-dim", "16", "--eval-every", "0", "--eval-tracks", "1",
                "--eval-max-steps", "10", "--set", "n_steps=16"]


def tiny_spec(steps: int) -> dict:
    return {"algo": "ppo", "representation": "relative", "color": list(COLORS), "seed": 3, "total_steps": steps,
            "n_envs": 2, "workers": 0, "n_anchors": 16, "latent_dim": 16, "head_dim": 16, "eval_every": 0,
            "eval_tracks": [10_000_000], "eval_max_steps": 10, "checkpoint_every": steps,
            "hyperparameters": {"n_steps": 16}}


def run(command: list[str], env: dict) -> float:
    t0 = time.time()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.time() - t0


def train_walls(out: Path) -> list[float]:
    return [json.loads((out / f"ppo-rel-{c}-s3" / "done.json").read_text())["wall_s"] for c in COLORS]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2048, help="steps per run (default 2048)")
    p.add_argument("--out", help="write the report here too (e.g. results/bench-grid.txt)")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()
    if args.out:
        files.check_new(args.out, overwrite=args.overwrite)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    lines = [
        f"bench-grid: 4 tiny runs of {args.steps} steps (tests/tiny.py's config; relative PPO, red green blue "
        "yellow, seed 3; one torch thread each), three ways",
        f"command: OMP_NUM_THREADS=1 nice -n 19 python scripts/bench_grid.py --steps {args.steps}",
        f"machine: {platform.platform()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-grid-") as tmp:
        root = Path(tmp)
        spec = root / "spec.yaml"
        import yaml

        spec.write_text(yaml.safe_dump(tiny_spec(args.steps)))
        # 1. relreps train x4, one after another
        seq = root / "sequential"
        t0 = time.time()
        for color in COLORS:
            run(["relreps", "train", "--out", str(seq / f"ppo-rel-{color}-s3"), "--color", color, "--steps",
                 str(args.steps), "--checkpoint-every", str(args.steps), *TINY_OPTIONS], env)
        seq_wall = time.time() - t0
        # 2. the grid on a local Ray with one CPU: one run at a time
        serial = root / "grid-serial"
        code = ("import sys; from relreps import grid; "
                f"sys.exit(grid.run_grid({str(spec)!r}, {str(serial)!r}, local_cpus=1, cpus_per_run=1).exit_code)")
        serial_wall = run([sys.executable, "-c", code], env)
        # 3. relreps grid on all cores
        parallel = root / "grid-parallel"
        parallel_wall = run(["relreps", "grid", str(spec), "--out", str(parallel)], env)

        serial_summary = json.loads((serial / "summary.json").read_text())
        parallel_summary = json.loads((parallel / "summary.json").read_text())
        rows = [("sequential (relreps train x4)", seq_wall, train_walls(seq), None),
                ("grid, 1 at a time (local Ray, 1 CPU)", serial_wall, train_walls(serial),
                 serial_summary["ray_start_s"]),
                (f"grid, all cores (relreps grid, {os.cpu_count()} at a time)", parallel_wall, train_walls(parallel),
                 parallel_summary["ray_start_s"])]
        lines.append(f"{'how':44s} {'wall s':>7s} {'runs own s (sum)':>17s} {'Ray start s':>12s} {'vs sequential':>14s}")
        for how, wall, own, start in rows:
            lines.append(f"{how:44s} {wall:7.1f} {sum(own):17.1f} {'-' if start is None else f'{start:.1f}':>12s} "
                         f"{wall / seq_wall:13.2f}x")
        overhead = (serial_wall - seq_wall) / len(COLORS)
        start = serial_summary["ray_start_s"]
        task_extra = [r["task_s"] - r["wall_s"] for r in serial_summary["runs"] if r.get("task_s") is not None]
        lines += [
            "",
            f"Ray's overhead per run (grid 1 at a time - sequential) / 4: {overhead:+.1f} s, of which Ray's start-up "
            f"{start / len(COLORS):.1f} s (once per grid: {start:.1f} s) and {overhead - start / len(COLORS):+.1f} s "
            "the rest (scheduling, the worker process, the result; a sequential run pays its own process start and "
            "imports instead)",
            f"inside a task, beyond the run's own wall time (log redirection, status files, the first import of "
            f"torch in a new worker): {', '.join(f'{x:.1f}' for x in task_extra)} s",
        ]
    lines += [
        "",
        "Noise: measured on a loaded 2-core machine (two long training runs and other jobs at normal priority, "
        "this benchmark at nice 19; see the load average above), so every number here moves with their load; "
        "only the rough size of Ray's overhead (seconds per run, against runs of hours) carries over.",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        files.write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
