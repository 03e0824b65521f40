"""A grid of training runs on Ray: one spec, one command, from one machine's cores to a cluster.

A **spec** is a YAML mapping whose keys are :class:`~relreps.training.TrainConfig` fields. A list
makes that field an axis of the grid; any other value applies to every run::

    algo: ppo
    representation: [absolute, relative]
    color: [green, red, blue, yellow]
    seed: 1
    total_steps: 2000000

(8 grid points.) A field whose value is itself a list (``eval_tracks``) takes a list as its value; a
list of lists makes it an axis. ``hyperparameters`` takes a mapping; a list of mappings is an axis.

Each grid point is one :func:`relreps.training.train` run in ``OUT/NAME``, where ``NAME`` is the
zoo's name for it (:func:`relreps.zoo.seed_agent_name`: ``ppo-rel-green``, ``ppo-abs-red-s2``), run
as a Ray task with the CPUs and GPU fraction asked for (:func:`run_grid`). The output folder holds:

- ``NAME/``: each point's run folder (:mod:`relreps.training`);
- ``logs/NAME.log``: all that the run printed, every attempt appended, with the traceback of a
  failure; ``logs/NAME.status.json``: the state of its latest attempt (host, process, start);
- ``grid.json``: the spec, its points and the settings of the latest start; ``summary.json``: the
  outcome of each run at the end of the latest start;
- ``.grid.lock``: held while a grid runs in the folder (a second grid there is refused).

**Resuming.** Run the same command again after an interruption (the grid killed, a worker or a node
lost): finished runs (``done.json``) are skipped, interrupted ones continue from their last
checkpoint (``resume=True``). Ray retries a task whose worker died (:data:`MAX_RETRIES` times), and
the retry resumes too. A run that fails is reported with its error and its log, never dropped.
Every run folder is locked while it trains (:class:`relreps.training.RunInUseError`), so two
grids, or a grid and a ``relreps train``, never write the same run folder.

**Checked first.** Everything is checked before Ray starts or anything is written: the spec's keys
(each a ``TrainConfig`` field), the axes (none empty), every point's config (as ``TrainConfig``
checks it), the run names (no two points with the same name), and the output folder (new, empty,
or holding only run folders and a grid's files; each existing run folder of the same config and
not in use).

**Quality bar.** With ``ship``, each finished run is evaluated on :data:`BAR_TRACKS` held-out tracks
(:func:`relreps.evaluation.evaluate`, written to ``NAME/`` :data:`relreps.zoo.EVALUATION_FILE`, as
``relreps evaluate RUN/agent --tracks 10 --out RUN/eval-10-tracks.json`` writes it) and shipped
into that zoo folder (:func:`relreps.zoo.ship`) if its mean maximum return reaches
:data:`QUALITY_BAR`; the others are listed and not shipped.

On a cluster, the output folder (and a ``ship`` folder) must be one that every node sees at the
same path (a shared file system); a task that does not find the grid's ``grid.json`` there fails
with a message saying so. Ray and PyYAML are optional dependencies (``pip install
'relreps[grid]'``); this module imports Ray only when a grid runs.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import evaluation, files, training, zoo
from .training import TrainConfig

__all__ = [
    "BAR_TRACKS",
    "GRID_FILE",
    "INSTALL",
    "MAX_RETRIES",
    "QUALITY_BAR",
    "REPO_SPECS",
    "SUMMARY_FILE",
    "GridError",
    "GridResult",
    "MissingDependency",
    "Plan",
    "Point",
    "RunResult",
    "load_spec",
    "plan",
    "points",
    "run_grid",
]

#: The quality bar of a shipped agent: mean maximum return on :data:`BAR_TRACKS` held-out tracks.
QUALITY_BAR = 750.0
#: How many held-out tracks (:data:`relreps.evaluation.EVAL_TRACKS`) the quality bar drives.
BAR_TRACKS = 10
#: Times Ray reruns a task whose worker process or node was lost (each rerun resumes the run).
MAX_RETRIES = 3
#: The grid's spec, points and settings, in the output folder.
GRID_FILE = "grid.json"
#: Each run's outcome at the end of the latest start, in the output folder.
SUMMARY_FILE = "summary.json"
#: The folder of a grid's logs (``NAME.log``) and attempt states (``NAME.status.json``).
LOGS = "logs"
#: The lock a running grid holds in its output folder.
LOCK = ".grid.lock"
#: How to install what a grid needs.
INSTALL = "pip install 'relreps[grid]' (or: pip install ray==2.60.0 pyyaml)"
#: The repository's grid specs (``grids/*.yaml``: the zoo, a second seed, Double DQN); present in a
#: clone of the repository, not in an installed package.
REPO_SPECS = Path(__file__).resolve().parent.parent / "grids"


class GridError(ValueError):
    """A spec, a grid point or an output folder that a grid refuses (nothing has been written)."""


class MissingDependency(ImportError):
    """Ray or PyYAML is not installed; the message says how to install them."""


# --------------------------------------------------------------------------------------------
# The spec and its points
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One grid point: its run name (the zoo's), its config and its values on the grid's axes."""

    name: str
    config: TrainConfig
    axes: dict[str, Any] = field(default_factory=dict)


def _require_yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise MissingDependency(f"reading a grid spec needs PyYAML: {INSTALL}") from None
    return yaml


def load_spec(path: str | os.PathLike) -> dict[str, Any]:
    """Read a grid spec (a YAML mapping of TrainConfig fields to values); refuses a missing file, a
    file that is not YAML, and YAML that is not a mapping with text keys."""
    yaml = _require_yaml()
    path = Path(path)
    if not path.is_file():
        raise GridError(f"grid spec {path} not found" + (f"; the repository's specs: {_repo_specs()}"
                                                            if _repo_specs() else ""))
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise GridError(f"grid spec {path} is not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(spec, dict) or not spec:
        raise GridError(f"grid spec {path} must be a mapping of TrainConfig fields to values (a list: an axis), "
                        f"e.g. 'color: [green, red]'; got {type(spec).__name__}")
    return spec


def _repo_specs() -> str:
    return ", ".join(sorted(str(p) for p in REPO_SPECS.glob("*.yaml"))) if REPO_SPECS.is_dir() else ""


def _fields() -> dict[str, Any]:
    """TrainConfig's fields and their defaults."""
    return {f.name: (f.default_factory() if callable(f.default_factory) else f.default) for f in fields(TrainConfig)}


def _type_ok(value: Any, annotation: str) -> bool:
    """Whether ``value`` (as YAML reads it) is of a TrainConfig field's annotated type."""
    checks: dict[str, Callable[[Any], bool]] = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "dict": lambda v: isinstance(v, dict),
        "None": lambda v: v is None,
        "tuple[int, ...]": lambda v: isinstance(v, (list, tuple)) and all(checks["int"](x) for x in v),
    }
    parts = [part.strip() for part in annotation.split("|")]
    return any(checks[part](value) for part in parts) if all(part in checks for part in parts) else True


def _check_type(key: str, value: Any) -> None:
    annotation = str({f.name: f.type for f in fields(TrainConfig)}[key])
    if not _type_ok(value, annotation):
        shown = annotation.replace(" | ", " or ").replace("None", "null").replace("tuple[int, ...]", "a list of integers")
        raise GridError(f"{key}: {value!r} ({type(value).__name__}) is not {shown}"
                        + (" (YAML reads 1e6 as text: write 1000000)" if "int" in annotation and isinstance(value, str)
                           else ""))


def _is_axis(value: Any, default: Any) -> bool:
    """A list is an axis, except for a field whose value is a sequence: then a list of lists is."""
    if not isinstance(value, list):
        return False
    if isinstance(default, (tuple, list)) and value:
        return all(isinstance(v, list) for v in value)
    return True


def _show(values: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in values.items()) + "}"


def points(spec: Mapping[str, Any]) -> list[Point]:
    """The grid points of a spec, in the order of its axes (the last axis varies fastest).

    Raises :class:`GridError` naming the problem: a key that is not a TrainConfig field (with the
    valid ones), an empty axis, a point whose config TrainConfig refuses (with the point's axis
    values and TrainConfig's reason), a point the zoo cannot name (seed below 1), or two points with
    the same run name (with the fields that tell them apart, which the name does not show).
    """
    if not isinstance(spec, Mapping) or not spec:
        raise GridError("a grid spec is a non-empty mapping of TrainConfig fields to values (a list: an axis)")
    defaults = _fields()
    unknown = [str(k) for k in spec if k not in defaults]
    if unknown:
        raise GridError(f"grid spec key(s) {', '.join(unknown)} are not TrainConfig fields; valid keys: "
                        f"{', '.join(defaults)}")
    axes: dict[str, list] = {}
    fixed: dict[str, Any] = {}
    for key, value in spec.items():
        if _is_axis(value, defaults[key]):
            if not value:
                raise GridError(f"axis {key} is empty: give it at least one value, or a single value for every run")
            for v in value:
                _check_type(key, v)
            axes[key] = [tuple(v) if isinstance(defaults[key], tuple) else v for v in value]
        else:
            _check_type(key, value)
            fixed[key] = tuple(value) if isinstance(defaults[key], tuple) and isinstance(value, list) else value
    out: list[Point] = []
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo))
        where = f"grid point {_show(values)}" if values else "the grid's one point"
        try:
            config = TrainConfig(**{**fixed, **values})
        except (TypeError, ValueError) as e:
            raise GridError(f"{where}: {e}") from None
        try:
            name = zoo.seed_agent_name(config.algo, config.representation, config.color, config.seed)
        except ValueError as e:
            raise GridError(f"{where}: the run is named by the zoo's rule, and {e}") from None
        out.append(Point(name, config, values))
    _check_names(out)
    return out


def _check_names(grid: Sequence[Point]) -> None:
    seen: dict[str, Point] = {}
    for p in grid:
        if p.name in seen:
            first = seen[p.name]
            differ = [k for k in p.axes if p.axes[k] != first.axes.get(k)]
            raise GridError(
                f"grid points {_show(first.axes)} and {_show(p.axes)} have the same run name {p.name!r} "
                f"(the zoo's name, ALGO-REP-COLOUR[-sSEED]), which does not show {', '.join(differ)}: give "
                f"{', '.join(differ)} one value, or run the other values as another grid with its own --out")
        seen[p.name] = p


# --------------------------------------------------------------------------------------------
# The output folder
# --------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What a grid will do: its points, the output folder and each run's state there: ``new``,
    ``resume`` (a run folder of the same config, not finished) or ``finished`` (``done.json``)."""

    points: list[Point]
    out: Path
    states: dict[str, str]

    def describe(self) -> str:
        """One line per point: name, state, axis values."""
        width = max(len(p.name) for p in self.points)
        return "\n".join(f"{p.name:{width}s}  {self.states[p.name]:8s}  {_show(p.axes)}" for p in self.points)


def _grid_files(out: Path, entry: Path) -> bool:
    """Whether ``entry`` (in ``out``) is something a grid, a run or the training scripts write."""
    name = entry.name
    if name.startswith("."):  # the locks; temporary files of an interrupted atomic write
        return True
    if entry.is_dir() and not entry.is_symlink():
        if (entry / "config.json").is_file():
            return True
        if name == LOGS:
            return all(_grid_files(entry, e) or e.name.endswith((".log", ".status.json")) for e in entry.iterdir())
        return not any(e.name != ".lock" for e in entry.iterdir())  # empty (a run that never started)
    if name in (GRID_FILE, SUMMARY_FILE):
        return True
    return name.endswith(".log") and (out / name[: -len(".log")]).is_dir()  # a run's log beside its folder


def _held(lock: Path) -> bool:
    """Whether another process holds the flock on ``lock`` (tested without keeping it)."""
    return files.held(lock)


def plan(grid: Sequence[Point], out: str | os.PathLike) -> Plan:
    """Check the output folder for ``grid`` and say what each run will do; writes nothing.

    Refuses (:class:`GridError`) an output folder that is a file, that holds other files than run
    folders, a grid's files (``logs/``, ``grid.json``, ``summary.json``) and hidden files, or that
    is in use by another grid; and, per point, a run folder of another config, a folder that is not
    a run folder, a run whose folder another process is training in, and what
    :func:`relreps.training.check_start` refuses (e.g. an anchor set that does not load). The device
    is not checked here: the runs may train on other machines.
    """
    out = Path(out)
    if not str(out).strip():
        raise GridError("the grid's output folder is empty: give one with --out, e.g. runs/")
    if out.exists() and not out.is_dir():
        raise GridError(f"--out {out} exists and is not a folder; choose a folder for the grid's run folders")
    if out.is_dir():
        foreign = sorted(e.name for e in out.iterdir() if not _grid_files(out, e))
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise GridError(f"--out {out} holds files that are not a grid's: {shown}. A grid's folder holds run "
                            f"folders (NAME/ with config.json), {LOGS}/, {GRID_FILE} and {SUMMARY_FILE}: choose "
                            "a new or empty folder, or move those files away")
        if (out / LOCK).exists() and _held(out / LOCK):
            raise GridError(f"another grid is running in {out} ({out / LOCK} is held): wait for it to end, or "
                            "choose another --out")
    states = {}
    for p in grid:
        run = out / p.name
        try:
            if (run / "done.json").is_file():
                saved = TrainConfig.from_json(json.loads((run / "config.json").read_text()))
                diff = training._config_diff(saved, p.config)
                if diff:
                    raise GridError(f"finished with another config ({'; '.join(diff)})")
                states[p.name] = "finished"
                continue
            if (run / ".lock").exists() and _held(run / ".lock"):
                raise GridError("another process is training in it (another grid, or relreps train): wait for "
                                "it to end, or choose another --out")
            # The device is where the run trains, maybe another machine: check the rest here.
            training.check_start(replace(p.config, device="cpu"), run, resume=True)
        except (OSError, ValueError) as e:
            message = " ".join(str(e).split())
            raise GridError(f"grid point {p.name} (run folder {run}): {message}") from None
        states[p.name] = "resume" if (run / "config.json").is_file() else "new"
    return Plan(list(grid), out, states)


# --------------------------------------------------------------------------------------------
# Running: the Ray task
# --------------------------------------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()) + " UTC"


def _status_path(out: Path, name: str) -> Path:
    return out / LOGS / f"{name}.status.json"


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class _Output:
    """Sends this process's standard output and error (file descriptors 1 and 2, so child
    processes' too) to a log file, appending, until the block ends."""

    def __init__(self, log: Path):
        self.log = log

    def __enter__(self) -> _Output:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.log.open("a", buffering=1)
        self.saved = (os.dup(1), os.dup(2))
        os.dup2(self.file.fileno(), 1)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc: object) -> None:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        for fd in self.saved:
            os.close(fd)
        self.file.close()


def _bar_evaluation(run: Path, tracks: int, max_steps: int, processes: int) -> dict:
    """The quality bar's evaluation of a finished run's agent (its own colour, the first ``tracks``
    held-out tracks), written to ``run/EVALUATION_FILE`` as ``relreps evaluate --out`` writes it
    (read back when it is there already)."""
    path = run / zoo.EVALUATION_FILE
    if path.is_file():
        result = json.loads(path.read_text())
        zoo.check_card_evaluation(result, path)  # the quality bar is the greedy, held-out score
        return result
    agent = zoo.load(run / "agent")
    result = evaluation.evaluate(agent, color=agent.color, track_seeds=evaluation.held_out_tracks(tracks),
                                 processes=processes, max_steps=max_steps)
    record = {"agent": agent.name, "sha256": agent.card.get("sha256"), "max_steps": max_steps, **result.summary()}
    files.write_text(path, json.dumps(record, indent=1) + "\n")
    return record


def _run_point(out: str, name: str, config: TrainConfig, session: str, threads: int,
               bar: dict | None) -> dict:
    """One grid point, in a Ray worker: train (or resume) the run, then, with ``bar``, evaluate it
    for the quality bar. Returns the run's record; an error is caught, logged and returned."""
    import socket
    import traceback

    import torch

    root, host, pid = Path(out), socket.gethostname(), os.getpid()
    run, log = root / name, root / LOGS / f"{name}.log"
    grid_file = _read_json(root / GRID_FILE)
    if grid_file is None or grid_file.get("session") != session:
        return {"name": name, "status": "failed", "host": host,
                "error": f"the grid's folder {root} is not visible on host {host} (no {GRID_FILE} of this grid "
                         "there): on a cluster, --out must be a shared folder every node sees at the same path"}
    previous = _read_json(_status_path(root, name)) or {}
    attempt = previous.get("attempt", 0) + 1 if previous.get("session") == session else 1
    started = time.time()
    status = {"session": session, "state": "running", "host": host, "pid": pid, "attempt": attempt,
              "started": started}
    files.write_text(_status_path(root, name), json.dumps(status) + "\n")
    record: dict[str, Any] = {"name": name, "host": host, "attempt": attempt}
    with _Output(log):
        print(f"== {name}: attempt {attempt} on {host} (pid {pid}) at {_now()}"
              + (f", resuming {run}" if (run / "config.json").is_file() else ""), flush=True)
        try:
            torch.set_num_threads(threads)
            if not (run / "done.json").is_file():
                training.train(config, run, resume=True, stop_on_signals=False)  # Ray stops its workers
                record["trained"] = True
            facts = json.loads((run / "done.json").read_text())
            record.update(status="finished", steps=facts.get("steps"), wall_s=facts.get("wall_s"),
                          steps_per_s=facts.get("steps_per_s"),
                          final_eval=(facts.get("final_eval") or {}).get("mean_max_return"))
            if bar is not None:
                result = _bar_evaluation(run, bar["tracks"], bar["max_steps"], max(1, threads, bar["processes"]))
                record["bar_score"] = result["mean_max_return"]
            print(f"== {name}: finished at {_now()}", flush=True)
        except Exception as e:
            traceback.print_exc()
            record.update(status="failed", error=" ".join(str(e).split()) or type(e).__name__)
            print(f"== {name}: failed at {_now()}", flush=True)
    record["task_s"] = round(time.time() - started, 2)
    files.write_text(_status_path(root, name), json.dumps({**status, "state": record["status"],
                                                            "ended": time.time()}) + "\n")
    return record


# --------------------------------------------------------------------------------------------
# Running: the driver
# --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One run's outcome: ``status`` is ``finished`` (trained to the end now), ``skipped`` (finished
    before this start) or ``failed`` (``error`` says why, ``log`` has the details); ``shipped`` is
    ``None`` without ``ship``, else whether the agent went into the zoo (``ship_note`` says why
    not: below the bar, or the zoo has the name already)."""

    name: str
    status: str
    steps: int | None = None
    wall_s: float | None = None
    steps_per_s: float | None = None
    final_eval: float | None = None
    bar_score: float | None = None
    shipped: bool | None = None
    ship_note: str = ""
    error: str = ""
    log: str = ""
    host: str = ""
    attempts: int = 0
    task_s: float | None = None


@dataclass
class GridResult:
    """A grid's outcome: each run's :class:`RunResult`, the wall time and the time Ray took to start."""

    runs: list[RunResult]
    wall_s: float
    ray_start_s: float | None
    interrupted: bool = False

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.runs if r.status == "failed"]

    @property
    def below_bar(self) -> list[RunResult]:
        return [r for r in self.runs if r.ship_note.startswith("below")]

    @property
    def exit_code(self) -> int:
        """0: every run finished (and, shipping, cleared the bar); 1: a run failed; 3: every run
        finished but some are below the quality bar (not shipped); 130: the grid was interrupted."""
        if self.interrupted:
            return 130
        if self.failed:
            return 1
        return 3 if self.below_bar else 0


def _require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependency(f"relreps grid runs on Ray, which is not installed: {INSTALL}") from None
    return ray


def _check_ray_installed() -> None:
    import importlib.util

    for module in ("ray", "yaml"):
        if importlib.util.find_spec(module) is None:
            raise MissingDependency(f"relreps grid needs Ray and PyYAML ({module} is not installed): {INSTALL}")


def _last_row(path: Path) -> dict[str, str] | None:
    """The last row of a CSV log, read from its end (the header from its start)."""
    try:
        with path.open("rb") as f:
            header = f.readline().decode(errors="replace").strip().split(",")
            size = f.seek(0, 2)
            f.seek(max(0, size - 8192))
            lines = [x for x in f.read().decode(errors="replace").splitlines() if x.strip()]
    except OSError:
        return None
    values = lines[-1].split(",") if lines else []
    if values == header or len(values) != len(header):  # no row yet, or one being written
        return None
    return dict(zip(header, values))


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _steps_text(steps: float | None, total: int) -> str:
    return "-" if steps is None else f"{int(steps):,}/{total:,}"


class _Board:
    """The live table: one row per run (state, steps, steps/s, last evaluation), read from the run
    folders and the attempts' states; on a terminal it redraws in place, elsewhere it prints a line
    when a run changes state."""

    def __init__(self, grid: Plan, session: str, console: Any):
        self.plan, self.session, self.console = grid, session, console
        self.state: dict[str, str] = {p.name: ("finished before" if grid.states[p.name] == "finished" else "waiting")
                                      for p in grid.points}
        self.notes: dict[str, str] = {p.name: "" for p in grid.points}
        self.shown: dict[str, str] = {}

    def refresh_states(self) -> None:
        for p in self.plan.points:
            if self.state[p.name] in ("waiting", "running"):
                status = _read_json(_status_path(self.plan.out, p.name)) or {}
                if status.get("session") == self.session and status.get("state") == "running":
                    self.state[p.name] = "running"
                    attempt = status.get("attempt", 1)
                    self.notes[p.name] = f"on {status.get('host')}" + (f", attempt {attempt}" if attempt > 1 else "")

    def set(self, name: str, state: str, note: str = "") -> None:
        self.state[name], self.notes[name] = state, note

    def rows(self) -> list[list[str]]:
        out = []
        for p in self.plan.points:
            run = self.plan.out / p.name
            done = _read_json(run / "done.json")
            progress = _last_row(run / "progress.csv")
            steps = done.get("steps") if done else _number((progress or {}).get("time/total_timesteps"))
            rate = done.get("steps_per_s") if done else _number((progress or {}).get("time/fps"))
            last = _last_row(run / "eval.csv")
            score = "-" if last is None else f"{float(last['mean_max_return']):.0f} at {int(last['timesteps']):,}"
            out.append([p.name, self.state[p.name], _steps_text(steps, p.config.total_steps),
                        "-" if rate is None else f"{float(rate):.0f}", score, self.notes[p.name]])
        return out

    def table(self) -> Any:
        from rich.table import Table

        t = Table(title=f"grid {self.plan.out}", title_justify="left")
        for column in ("run", "state", "steps", "steps/s", "last evaluation", ""):
            t.add_column(column, justify="right" if column in ("steps", "steps/s") else "left")
        for row in self.rows():
            t.add_row(*row)
        return t

    def print_changes(self) -> None:
        for p in self.plan.points:
            text = f"{self.state[p.name]} {self.notes[p.name]}".strip()
            if self.shown.get(p.name) != text:
                self.shown[p.name] = text
                self.console.print(f"{_now()}  {p.name}: {text}", highlight=False)


def _ship(run: RunResult, out: Path, dest: Path, bar: float) -> None:
    """Ship a finished run that clears the bar into ``dest`` (not one whose name is there already)."""
    if run.bar_score is None:
        evaluation_file = _read_json(out / run.name / zoo.EVALUATION_FILE)
        run.bar_score = evaluation_file.get("mean_max_return") if evaluation_file else None
    if run.bar_score is None:
        run.shipped, run.ship_note = False, "not evaluated"
        return
    if run.bar_score < bar:
        run.shipped, run.ship_note = False, f"below the bar ({run.bar_score:.1f} < {bar:g})"
        return
    card = _read_json(dest / f"{run.name}.json")
    if card is not None:
        mine = _read_json(out / run.name / "agent.json") or {}
        same = card.get("sha256") == mine.get("sha256")
        run.shipped = same
        run.ship_note = "in the zoo already" if same else (
            f"the zoo has another agent {run.name} (replace it with relreps zoo ship ... --overwrite)")
        return
    try:
        zoo.ship(out / run.name, run.name, dest=dest)
    except (OSError, ValueError) as e:
        run.shipped, run.ship_note = False, f"not shipped: {' '.join(str(e).split())}"
        return
    run.shipped, run.ship_note = True, f"shipped to {dest}"


def _summary(result: GridResult, console: Any, ship: Path | None) -> None:
    from rich.table import Table

    t = Table(title="grid summary", title_justify="left")
    columns = ["run", "status", "steps", "wall time", "steps/s", "final eval (5 tracks)"]
    if ship is not None:
        columns += [f"bar ({BAR_TRACKS} tracks)", "shipped"]
    for column in columns:
        t.add_column(column)
    for r in result.runs:
        row = [r.name, r.status + (f" ({r.attempts} attempts)" if r.attempts > 1 else ""),
               "-" if r.steps is None else f"{r.steps:,}",
               _duration(r.wall_s),
               "-" if r.steps_per_s is None else f"{r.steps_per_s:.0f}",
               "-" if r.final_eval is None else f"{r.final_eval:.1f}"]
        if ship is not None:
            row += ["-" if r.bar_score is None else f"{r.bar_score:.1f}", r.ship_note or "-"]
        t.add_row(*row)
    console.print(t)
    for r in result.failed:
        console.print(f"FAILED {r.name}: {r.error}\n  log: {r.log}", highlight=False)
        tail = [line for line in _tail(Path(r.log)) if line.strip()]
        for line in tail[-8:]:
            console.print(f"  | {line}", highlight=False, markup=False)
    if result.below_bar:
        console.print("below the quality bar, not shipped: "
                      + ", ".join(f"{r.name} ({r.bar_score:.1f})" for r in result.below_bar), highlight=False)
    done = sum(r.status in ("finished", "skipped") for r in result.runs)
    console.print(f"{done} of {len(result.runs)} runs finished, {len(result.failed)} failed; "
                  f"{result.wall_s:.0f} s" + (" (interrupted: run the same command to resume)"
                                              if result.interrupted else ""), highlight=False)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 3600:.2f} h"


def _tail(path: Path, size: int = 4096) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, 2) - size))
            return f.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def _settle(grid: Plan, name: str, record: dict | None, error: str = "") -> RunResult:
    """A run's result from its task's record (or, when the task was lost, from ``error``)."""
    out = grid.out
    record = record or {"status": "failed", "error": error}
    done = _read_json(out / name / "done.json")
    status = record.get("status", "failed")
    if status == "finished" and not record.get("trained"):
        status = "skipped"
    status_file = _read_json(_status_path(out, name)) or {}
    r = RunResult(name=name, status=status, error=record.get("error", ""), log=str(out / LOGS / f"{name}.log"),
                  host=record.get("host", status_file.get("host", "")),
                  attempts=record.get("attempt", status_file.get("attempt", 0)), task_s=record.get("task_s"),
                  bar_score=record.get("bar_score"))
    if done:
        r.steps, r.wall_s, r.steps_per_s = done.get("steps"), done.get("wall_s"), done.get("steps_per_s")
        r.final_eval = (done.get("final_eval") or {}).get("mean_max_return")
    return r


def run_grid(spec: str | os.PathLike | Mapping[str, Any], out: str | os.PathLike, *, address: str | None = None,
             cpus_per_run: float = 1.0, gpus_per_run: float = 0.0, ship: str | os.PathLike | None = None,
             dry_run: bool = False, local_cpus: int | None = None, min_score: float = QUALITY_BAR,
             bar_tracks: int = BAR_TRACKS, bar_max_steps: int = 1000, refresh_s: float = 2.0,
             console: Any = None) -> GridResult:
    """Train every point of ``spec`` (a YAML file or a mapping) into ``out/NAME``, as Ray tasks.

    Without ``address``, starts a local Ray on this machine (``local_cpus`` CPUs, default all its
    cores) and stops it at the end; with one (``auto``, ``HOST:6379`` or ``ray://HOST:10001``), joins
    that cluster. Each run is a task with ``cpus_per_run`` CPUs and ``gpus_per_run`` of a GPU (a
    fraction lets several runs share one GPU; without one, a run on ``device: auto`` trains on the
    CPU). A spec without ``workers`` gives each run ``int(cpus_per_run)`` environment processes
    (below 2 CPUs: none, the environments step in the training process). A run whose environments
    step in the training process (``workers`` 0) uses ``int(cpus_per_run)`` torch threads, any
    other run one. With ``dry_run``, checks everything and prints the plan; Ray does not start.

    Everything is checked first (:func:`points`, :func:`plan`, the resources against the cluster's
    nodes); a bad input raises :class:`GridError` before Ray starts or anything is written. While
    the grid runs, a live table shows each run's state, steps, steps/s and last evaluation; at the
    end, a summary (also written to ``out/summary.json``). With ``ship`` (a zoo folder), finished
    runs are evaluated for the quality bar (``min_score`` on ``bar_tracks`` held-out tracks of
    ``bar_max_steps`` steps) and those that clear it are shipped there. An interruption
    (Ctrl-C, SIGTERM) stops the runs (their checkpoints stay): the same call resumes them.
    """
    from rich.console import Console

    if console is None:  # a log file or a pipe gets wide lines, not a terminal's 80 columns
        console = Console() if os.isatty(1) else Console(width=160)
    t0 = time.time()
    for key, value, low in (("cpus_per_run", cpus_per_run, 0.0), ("gpus_per_run", gpus_per_run, 0.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low or (
                key == "cpus_per_run" and value <= 0):
            raise GridError(f"{key} must be a number {'>' if key == 'cpus_per_run' else '>='} 0, got {value!r}")
    if not dry_run:
        _check_ray_installed()
    if isinstance(spec, Mapping):
        spec_map: dict[str, Any] = dict(spec)
    else:
        spec_map = load_spec(spec)
    grid = points(spec_map)
    if "workers" not in spec_map:
        workers = int(cpus_per_run) if cpus_per_run >= 2 else 0
        grid = [replace(p, config=replace(p.config, workers=workers)) for p in grid]
    if gpus_per_run == 0:  # Ray leaves a task without a GPU share every GPU visible: it must not use one
        grid = [replace(p, config=replace(p.config, device="cpu")) if p.config.device == "auto" else p
                for p in grid]
    for p in grid:
        if gpus_per_run > 0 and p.config.device == "cpu":
            raise GridError(f"--gpus-per-run {gpus_per_run:g} gives each run a GPU share, but grid point {p.name} "
                            "has device: cpu; set device: auto or cuda in the spec, or drop --gpus-per-run")
        if gpus_per_run == 0 and p.config.device.startswith("cuda"):
            raise GridError(f"grid point {p.name} has device: {p.config.device}, but a run gets a GPU only with "
                            "--gpus-per-run F (e.g. 0.25: four runs per GPU); or set device: auto")
    the_plan = plan(grid, Path(out).absolute())
    dest = Path(ship).absolute() if ship is not None else None
    if dest is not None and dest.exists() and not dest.is_dir():
        raise GridError(f"--ship {dest} exists and is not a folder: give the zoo folder to ship into")
    if dest is not None:
        there = [p.name for p in grid if (dest / f"{p.name}.json").exists()]
        if there:
            console.print(f"note: {dest} already has {', '.join(there)}: those are not shipped again "
                          "(a different agent of the same name is not replaced)", highlight=False)
    if dry_run:
        console.print(the_plan.describe(), highlight=False, markup=False)
        return GridResult([RunResult(p.name, the_plan.states[p.name]) for p in grid], time.time() - t0, None)

    bar = None if dest is None else {"tracks": bar_tracks, "max_steps": bar_max_steps,
                                     "processes": max(1, int(cpus_per_run))}
    todo = [p for p in grid if the_plan.states[p.name] != "finished"
            or (dest is not None and not (the_plan.out / p.name / zoo.EVALUATION_FILE).is_file())]
    return _execute(the_plan, spec_map, todo, console=console, t0=t0, address=address, cpus_per_run=cpus_per_run,
                    gpus_per_run=gpus_per_run, local_cpus=local_cpus, dest=dest, bar=bar, min_score=min_score,
                    refresh_s=refresh_s)


def _grid_lock(out: Path) -> Any:
    out.mkdir(parents=True, exist_ok=True)
    f = files.try_lock(out / LOCK)
    if f is None:
        raise GridError(f"another grid is running in {out}: wait for it to end, or choose another --out")
    return f


def _start_ray(ray: Any, address: str | None, local_cpus: int | None, cpus: float, gpus: float) -> None:
    """Start (or join) Ray, then refuse a run that no node can host."""
    import logging

    if address is None:
        ray.init(num_cpus=local_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    else:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    most_cpus = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    most_gpus = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    if cpus > most_cpus or gpus > most_gpus:
        raise GridError(f"a run asks for {cpus:g} CPUs and {gpus:g} GPUs, but the largest of the cluster's "
                        f"{len(nodes)} node(s) has {most_cpus:g} CPUs and {most_gpus:g} GPUs: lower --cpus-per-run "
                        "or --gpus-per-run")


def _execute(the_plan: Plan, spec: dict, todo: list[Point], *, console: Any, t0: float, address: str | None,
             cpus_per_run: float, gpus_per_run: float, local_cpus: int | None, dest: Path | None,
             bar: dict | None, min_score: float, refresh_s: float) -> GridResult:
    import secrets
    import signal

    out = the_plan.out
    session = secrets.token_hex(8)
    results: dict[str, RunResult] = {}
    ray_start_s: float | None = None
    interrupted = False
    board = _Board(the_plan, session, console)
    lock = _grid_lock(out)
    ray: Any = None
    previous_term = None

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    def on_sigterm() -> Any:
        """SIGTERM stops the grid as Ctrl-C does (set again once Ray has started: it installs its own)."""
        try:
            return signal.signal(signal.SIGTERM, terminate)
        except ValueError:  # not the main thread: SIGTERM keeps its handler
            return None

    try:
        previous_term = on_sigterm()
        files.write_text(out / GRID_FILE, json.dumps({
            "session": session, "started": _now(), "spec": spec, "address": address or "local",
            "cpus_per_run": cpus_per_run, "gpus_per_run": gpus_per_run, "ship": str(dest) if dest else None,
            "points": [{"name": p.name, "axes": p.axes, "config": asdict(p.config)} for p in the_plan.points],
        }, indent=1, default=str) + "\n")
        todo_names = {p.name for p in todo}
        for p in the_plan.points:
            if p.name not in todo_names:
                results[p.name] = _settle(the_plan, p.name, {"status": "finished"})
        if todo:
            ray = _require_ray()
            started = time.time()
            _start_ray(ray, address, local_cpus, cpus_per_run, gpus_per_run)
            ray_start_s = round(time.time() - started, 2)
            on_sigterm()
            task = ray.remote(_run_point).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run,
                                                   max_retries=MAX_RETRIES, retry_exceptions=False)
            refs = {}
            for p in todo:
                threads = max(1, int(cpus_per_run)) if p.config.workers == 0 else 1
                refs[task.remote(str(out), p.name, p.config, session, threads, bar)] = p.name
            _watch(ray, refs, the_plan, board, results, dest, min_score, console, refresh_s)
    except KeyboardInterrupt:
        interrupted = True
        console.print("interrupted: stopping the runs (their checkpoints stay); run the same command to resume",
                      highlight=False)
    finally:
        if ray is not None and ray.is_initialized():
            ray.shutdown()
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        runs = [results.get(p.name) or RunResult(p.name, "interrupted" if interrupted else "not started",
                                                 log=str(out / LOGS / f"{p.name}.log"))
                for p in the_plan.points]
        if dest is not None:
            for r in runs:
                if r.status in ("finished", "skipped") and r.shipped is None:
                    _ship(r, out, dest, min_score)
        result = GridResult(runs, round(time.time() - t0, 2), ray_start_s, interrupted)
        files.write_text(out / SUMMARY_FILE, json.dumps({
            "session": session, "ended": _now(), "wall_s": result.wall_s, "ray_start_s": ray_start_s,
            "interrupted": interrupted, "runs": [asdict(r) for r in runs]}, indent=1) + "\n")
        lock.close()
    _summary(result, console, dest)
    return result


def _watch(ray: Any, refs: dict, the_plan: Plan, board: _Board, results: dict[str, RunResult], dest: Path | None,
           min_score: float, console: Any, refresh_s: float) -> None:
    """Wait for the tasks, updating the live table, settling (and shipping) each run as it ends."""
    from contextlib import nullcontext

    from rich.live import Live

    live = Live(board.table(), console=console, refresh_per_second=1) if console.is_terminal else None
    pending = list(refs)
    with live if live is not None else nullcontext():
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=refresh_s)
            for ref in done:
                name = refs[ref]
                try:
                    r = _settle(the_plan, name, ray.get(ref))
                except ray.exceptions.RayError as e:  # the worker or node was lost, every retry too
                    lines = str(e).strip().splitlines()
                    r = _settle(the_plan, name, None, f"{type(e).__name__}: {lines[0] if lines else ''}")
                if dest is not None and r.status in ("finished", "skipped"):
                    _ship(r, the_plan.out, dest, min_score)
                results[name] = r
                board.set(name, r.status, r.error or r.ship_note)
            board.refresh_states()
            if live is not None:
                live.update(board.table())
            else:
                board.print_changes()
