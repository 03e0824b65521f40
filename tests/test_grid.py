"""`relreps grid`: a YAML spec of TrainConfig fields -> grid points -> resumable runs on Ray.

The spec, the points and every refusal are checked without Ray (nothing is written, Ray does not
start); the tests that start a local Ray (two CPUs) train two tiny runs and are marked ``slow``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from tiny import tiny

from relreps import cli, grid, training, zoo

#: Two tiny runs (red and blue, seed 3) of a few hundred steps, a checkpoint every 64 steps.
TINY_SPEC = {k: v for k, v in asdict(tiny(total_steps=384, checkpoint_every=64, eval_every=192)).items()
             if k not in ("color", "latent_norm")} | {"color": ["red", "blue"], "eval_tracks": [10_000_000]}
NAMES = ["ppo-rel-red-s3", "ppo-rel-blue-s3"]


def write_spec(path: Path, spec: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(spec))
    return path


# --------------------------------------------------------------------------------------------
# The spec and its points (no Ray)
# --------------------------------------------------------------------------------------------


def test_lists_are_axes_and_scalars_apply_to_every_run():
    points = grid.points({"algo": "ppo", "representation": ["relative", "absolute"],
                          "color": ["green", "red", "blue", "yellow"], "seed": [1, 2], "total_steps": 2_000_000})
    assert len(points) == 16
    assert [p.name for p in points[:3]] == ["ppo-rel-green", "ppo-rel-green-s2", "ppo-rel-red"]
    assert points[1].axes == {"representation": "relative", "color": "green", "seed": 2}
    assert all(p.config.total_steps == 2_000_000 for p in points)
    assert points[-1].name == "ppo-abs-yellow-s2" and points[-1].config.representation == "absolute"


def test_a_sequence_field_takes_a_list_and_a_mapping_field_a_mapping():
    one = grid.points({"color": "red", "eval_tracks": [10_000_000, 10_000_001],
                       "hyperparameters": {"n_steps": 64}})
    assert len(one) == 1 and one[0].config.eval_tracks == (10_000_000, 10_000_001)
    assert one[0].config.hyperparameters == {"n_steps": 64} and one[0].name == "ppo-rel-red"
    # A list of lists, and a list of mappings, are axes (which the run names do not show)
    with pytest.raises(grid.GridError, match=r"\{eval_tracks: \(10000000,\)\} and \{eval_tracks: \(10000001,\)\}"):
        grid.points({"eval_tracks": [[10_000_000], [10_000_001]]})
    with pytest.raises(grid.GridError, match="same run name 'ppo-rel-green' .* does not show hyperparameters"):
        grid.points({"hyperparameters": [{"n_steps": 64}, {"n_steps": 128}]})


@pytest.mark.parametrize("spec, message", [
    ({"colour": ["red"]}, r"colour are not TrainConfig fields; valid keys: algo, representation, color"),
    ({"color": []}, r"axis color is empty"),
    ({"color": ["red", "purple"]}, r"grid point \{color: 'purple'\}: unknown colour 'purple': expected"),
    ({"representation": ["relative", "rel"]}, r"unknown representation 'rel': expected one of"),
    ({"total_steps": "1e6"}, r"total_steps: '1e6' \(str\) is not int \(YAML reads 1e6 as text: write 1000000\)"),
    ({"latent_dim": [256, "none"]}, r"latent_dim: 'none' \(str\) is not int or null"),
    ({"total_steps": 0}, r"the grid's one point: total_steps and n_envs must be >= 1"),
    ({"seed": [0]}, r"named by the zoo's rule, and a training seed is an integer >= 1"),
    ({"color": "red", "total_steps": [1000, 2000]},
     r"have the same run name 'ppo-rel-red' .* which does not show total_steps: give total_steps one value"),
    ({}, r"non-empty mapping"),
])
def test_bad_specs_are_refused_with_the_problem_and_the_choices(spec, message):
    with pytest.raises(grid.GridError, match=message):
        grid.points(spec)


def test_load_spec_refuses_what_is_not_a_mapping(tmp_path):
    with pytest.raises(grid.GridError, match="not found"):
        grid.load_spec(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- red\n- blue\n")
    with pytest.raises(grid.GridError, match="must be a mapping of TrainConfig fields"):
        grid.load_spec(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("color: [red\n")
    with pytest.raises(grid.GridError, match="is not valid YAML"):
        grid.load_spec(tmp_path / "bad.yaml")


@pytest.mark.parametrize("name, algo, seed", [("zoo", "ppo", 1), ("seeds", "ppo", 2), ("algorithms", "ddqn", 1)])
def test_the_repositorys_grid_specs(name, algo, seed):
    points = grid.points(grid.load_spec(grid.REPO_SPECS / f"{name}.yaml"))
    expected = {zoo.seed_agent_name(algo, rep, color, seed) for rep in ("relative", "absolute")
                for color in ("green", "red", "blue", "yellow")}
    assert {p.name for p in points} == expected
    assert all(p.config.total_steps == 2_000_000 and p.config.anchors == "scripted-3136" for p in points)
    defaults = training.TrainConfig(representation="relative")  # the zoo's recipe: relreps train's defaults
    rel = next(p.config for p in points if p.config.representation == "relative")
    assert (rel.anchor_update, rel.latent_norm, rel.standardize, rel.n_envs) == (
        defaults.anchor_update, defaults.latent_norm, defaults.standardize, defaults.n_envs)


# --------------------------------------------------------------------------------------------
# The output folder (no Ray)
# --------------------------------------------------------------------------------------------


def test_plan_states_and_foreign_files(tmp_path):
    points = grid.points(TINY_SPEC)
    out = tmp_path / "runs"
    assert grid.plan(points, out).states == dict.fromkeys(NAMES, "new") and not out.exists()
    (out / NAMES[0]).mkdir(parents=True)
    (out / NAMES[0] / "config.json").write_text(json.dumps(asdict(points[0].config)))
    (out / NAMES[1]).mkdir()
    (out / NAMES[1] / "config.json").write_text(json.dumps(asdict(points[1].config)))
    (out / NAMES[1] / "done.json").write_text("{}")
    (out / "ppo-abs-green").mkdir()  # another grid's run, left alone
    (out / "ppo-abs-green" / "config.json").write_text("{}")
    (out / "logs").mkdir()
    (out / "logs" / f"{NAMES[0]}.log").write_text("")
    (out / grid.GRID_FILE).write_text("{}")
    assert grid.plan(points, out).states == {NAMES[0]: "resume", NAMES[1]: "finished"}
    (out / "notes.txt").write_text("mine")
    (out / "data").mkdir()
    (out / "data" / "x.npy").write_text("")
    with pytest.raises(grid.GridError, match=r"holds files that are not a grid's: data, notes.txt"):
        grid.plan(points, out)


def test_a_run_folder_of_another_config_is_refused(tmp_path):
    points = grid.points(TINY_SPEC)
    run = tmp_path / NAMES[0]
    run.mkdir()
    (run / "config.json").write_text(json.dumps(asdict(tiny(total_steps=999))))
    with pytest.raises(grid.GridError, match=r"grid point ppo-rel-red-s3 .*different config .*total_steps: 999 -> 384"):
        grid.plan(points, tmp_path)
    (run / "done.json").write_text("{}")
    with pytest.raises(grid.GridError, match=r"finished with another config \(total_steps: 999 -> 384"):
        grid.plan(points, tmp_path)


def test_a_run_folder_in_use_and_a_running_grid_are_refused(tmp_path):
    import fcntl

    points = grid.points(TINY_SPEC)
    run = tmp_path / NAMES[1]
    run.mkdir()
    (run / "config.json").write_text(json.dumps(asdict(points[1].config)))
    with (run / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(grid.GridError, match="another process is training in it"):
            grid.plan(points, tmp_path)
    grid.plan(points, tmp_path)  # released
    with (tmp_path / grid.LOCK).open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(grid.GridError, match="another grid is running in"):
            grid.plan(points, tmp_path)


@pytest.mark.parametrize("options, message", [
    (["--cpus-per-run", "0"], "cpus_per_run must be a number > 0"),
    (["--gpus-per-run", "-1"], "gpus_per_run must be a number >= 0"),
    (["--gpus-per-run", "0.5"], "has device: cpu"),
])
def test_bad_options_fail_in_one_line_before_anything_is_written(tmp_path, capsys, options, message):
    spec = write_spec(tmp_path / "spec.yaml", {**TINY_SPEC, "device": "cpu"})
    assert cli.main(["grid", str(spec), "--out", str(tmp_path / "runs"), "--dry-run", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_a_cuda_device_needs_a_gpu_share(tmp_path):
    with pytest.raises(grid.GridError, match="a run gets a GPU only with --gpus-per-run"):
        grid.run_grid({**TINY_SPEC, "device": "cuda"}, tmp_path / "runs", dry_run=True)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    spec = write_spec(tmp_path / "spec.yaml", TINY_SPEC)
    assert cli.main(["grid", str(spec), "--out", str(tmp_path / "runs"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [[NAMES[0], "new"], [NAMES[1], "new"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_without_ray_one_line_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    spec = write_spec(tmp_path / "spec.yaml", TINY_SPEC)
    monkeypatch.setitem(sys.modules, "ray", None)  # find_spec("ray") -> None: not installed
    assert cli.main(["grid", str(spec), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'relreps[grid]'" in err and "ray==2.60.0" in err
    assert not (tmp_path / "runs").exists()


def test_ray_is_imported_only_when_a_grid_runs():
    code = ("import sys; import relreps.grid, relreps.cli; relreps.cli.build_parser(); "
            "relreps.grid.points({'color': ['red', 'blue']}); print('ray' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_live_tables_rows_come_from_the_run_folders(tmp_path):
    from rich.console import Console

    points = grid.points(TINY_SPEC)
    board = grid._Board(grid.Plan(points, tmp_path, dict.fromkeys(NAMES, "new")), "s", Console(width=200))
    run = tmp_path / NAMES[0]
    run.mkdir()
    (run / "progress.csv").write_text("time/fps,time/total_timesteps\n100,64\n120,128\n")
    (run / "eval.csv").write_text("timesteps,wall_s,mean_max_return,std_max_return\n192,3.0,12.5,1.0\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / f"{NAMES[0]}.status.json").write_text(json.dumps(
        {"session": "s", "state": "running", "host": "node-1", "attempt": 2}))
    board.refresh_states()
    rows = board.rows()
    assert rows[0] == [NAMES[0], "running", "128/384", "120", "12 at 192", "on node-1, attempt 2"]
    assert rows[1] == [NAMES[1], "waiting", "-", "-", "-", ""]


# --------------------------------------------------------------------------------------------
# On a local Ray with two CPUs (slow)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_interrupted_grid_resumes_with_the_same_command(tmp_path):
    """The grid (one run at a time) is interrupted after one run has finished; the same command
    skips it, trains the other (resumed from its checkpoint when it had one) and, shipping, lists
    both below the quality bar without shipping them."""
    spec = write_spec(tmp_path / "spec.yaml", TINY_SPEC)
    out, log = tmp_path / "runs", (tmp_path / "first.txt").open("w")
    command = [sys.executable, "-m", "relreps", "grid", str(spec), "--out", str(out), "--cpus-per-run", "2"]
    # Ctrl-C's default action in the grid, however the tests were started: a shell without job control
    # starts background commands (`pytest ... &`) with SIGINT ignored, and children inherit that
    first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 600
    while not list(out.glob("*/done.json")) and first.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    finished = [p.parent.name for p in out.glob("*/done.json")]
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=120) == 130, (tmp_path / "first.txt").read_text()
    assert len(finished) == 1, (tmp_path / "first.txt").read_text()
    other = next(n for n in NAMES if n not in finished)
    summary = json.loads((out / grid.SUMMARY_FILE).read_text())
    assert {r["name"]: r["status"] for r in summary["runs"]}[finished[0]] == "finished"
    assert summary["interrupted"]

    resumed = (out / other / "config.json").is_file()  # it had started (a checkpoint or not)
    result = grid.run_grid(spec, out, cpus_per_run=2, local_cpus=2, ship=tmp_path / "zoo", bar_tracks=1,
                           bar_max_steps=20, refresh_s=0.5)
    status = {r.name: r.status for r in result.runs}
    assert status == {finished[0]: "skipped", other: "finished"}
    assert all((out / n / "done.json").is_file() and (out / n / zoo.EVALUATION_FILE).is_file() for n in NAMES)
    assert [r.shipped for r in result.runs] == [False, False] and len(result.below_bar) == 2
    assert result.exit_code == 3 and not (tmp_path / "zoo").exists()
    assert (f"resuming {out / other}" in (out / "logs" / f"{other}.log").read_text()) == resumed

    again = grid.run_grid(spec, out, local_cpus=2, refresh_s=0.5)  # nothing left to do: Ray does not start
    assert [r.status for r in again.runs] == ["skipped", "skipped"] and again.ray_start_s is None


@pytest.mark.slow
def test_failures_are_reported_lost_workers_resume_and_good_runs_ship(tmp_path: Path) -> None:
    """One run cannot resume (its checkpoint is corrupt): it fails, with its error and its log. The
    other loses its worker mid-run: Ray reruns the task, which resumes, and the run clears a
    (lowered) bar and is shipped."""
    points = grid.points(TINY_SPEC)
    out = tmp_path / "runs"
    broken = out / NAMES[0]
    broken.mkdir(parents=True)
    (broken / "config.json").write_text(json.dumps(asdict(points[0].config)))
    (broken / "checkpoint.pt").write_bytes(b"not a checkpoint")
    killed: list[int] = []

    def kill_once() -> None:  # the second run's worker, once it has a checkpoint
        import os

        status = out / "logs" / f"{NAMES[1]}.status.json"
        while not killed and time.time() < deadline:
            time.sleep(0.2)
            state = grid._read_json(status) or {}
            if state.get("state") == "running" and (out / NAMES[1] / "checkpoint.pt").is_file():
                os.kill(state["pid"], signal.SIGKILL)
                killed.append(state["pid"])

    deadline = time.time() + 600
    watcher = threading.Thread(target=kill_once, daemon=True)
    watcher.start()
    result = grid.run_grid(TINY_SPEC, out, cpus_per_run=1, local_cpus=2, ship=tmp_path / "zoo",
                           min_score=-1e9, bar_tracks=1, bar_max_steps=20, refresh_s=0.5)
    watcher.join(timeout=5)
    bad, good = result.runs
    assert bad.status == "failed" and "cannot be read as a checkpoint" in bad.error
    assert "Traceback" in Path(bad.log).read_text() and bad.log == str(out / "logs" / f"{NAMES[0]}.log")
    assert killed and good.status == "finished" and good.attempts == 2
    assert "resuming" in (out / "logs" / f"{NAMES[1]}.log").read_text()
    assert good.shipped and (tmp_path / "zoo" / f"{NAMES[1]}.json").is_file()
    card = json.loads((tmp_path / "zoo" / f"{NAMES[1]}.json").read_text())
    assert card["evaluation"]["tracks"] == [10_000_000]
    assert result.exit_code == 1
    summary = json.loads((out / grid.SUMMARY_FILE).read_text())
    assert [r["status"] for r in summary["runs"]] == ["failed", "finished"]
