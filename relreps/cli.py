"""The ``relreps`` command line (also ``python -m relreps``).

    relreps anchors collect NAME [--driver scripted|AGENT] [--out DIR] [--steps 4000] [--n-anchors 3136] [--colors ...]
    relreps anchors list
    relreps anchors show NAME_OR_PATH
    relreps anchors verify NAME_OR_PATH [--colors ...]
    relreps anchors grid NAME_OR_PATH --out grid.png [--count 8]
    relreps train --out DIR [--algo ppo] [--representation relative] [--color red] [--steps N] [--resume]
                  [--from RUN]
    relreps grid SPEC --out DIR [--address ADDR] [--cpus-per-run N] [--gpus-per-run F] [--ship ZOO] [--dry-run]
    relreps export RUN --out PATH [--overwrite] [--anchor-embeddings saved|reembedded]
    relreps evaluate AGENT [--tracks 10] [--track-set held-out|validation] [--out results/eval-AGENT.json]
    relreps select RUN | AGENT... [--tracks 10] [--out RUN/selection.json]
    relreps table [--algo ppo] [--agents-dir DIR] [--tracks 10] [--align anchor-mean|affine] [--out results]
    relreps table --representations relative --agent green=ppo-rel-green-s2   # one agent replaced
    relreps table --representations relative --colors green --seeds 1 2 --cross-seed  # across seeds
    relreps table --representations relative --colors green red --algos ppo ddqn    # across algorithms
    relreps zoo list | relreps zoo ship RUN NAME [--selected]
    relreps bench env [--tracks 4] [--steps 500] [--seed 0] [--rasterizer numba|gfxdraw] [--profile]
    relreps bench update [--latent-dim D] [--n-anchors N]
    relreps bench train [--variants sb3 fp32 bf16] [--updates 2] [--envs 16] [--eval-tracks 1]
    relreps latent AGENT_A AGENT_B [--steps 1000] [--stride 4] [--colors CA CB] [--reembed-anchors] [--out FILE] [--overwrite]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import stitching


def _anchors_collect(args) -> int:
    from . import anchors
    from .envs import color_name

    if not args.name.strip() or Path(args.name).name != args.name:
        raise ValueError(f"invalid anchor set name {args.name!r}: a plain name such as my-set (the folder is --out)")
    out = Path(args.out) if args.out else Path("anchors") / args.name
    anchors.check_target(out, overwrite=args.overwrite)  # everything is checked before the drive
    anchors.check_recording(n_steps=args.steps, n_anchors=args.n_anchors, burst_every=args.burst_every,
                            burst_length=args.burst_length)
    names = [color_name(c) for c in args.colors]
    if len(set(names)) != len(names):
        raise ValueError(f"--colors names a colour twice: {' '.join(names)}")
    t0 = time.time()
    driver: anchors.AgentDriver | None = None
    extra: dict[str, Any] = {}
    if args.driver != "scripted":  # a trained agent drives, in its own colour (the paper's way)
        from . import zoo

        agent = zoo.load(args.driver)
        driver, extra = anchors.AgentDriver(agent, name=agent.name), {"color": agent.color}
    aset = anchors.create(
        args.name,
        driver=driver,
        colors=args.colors,
        n_anchors=args.n_anchors,
        n_steps=args.steps,
        seed=args.seed,
        burst_every=args.burst_every,
        burst_length=args.burst_length,
        **extra,
    )
    path = aset.save(out, overwrite=args.overwrite)
    print(f"saved {aset.n_anchors} anchors in {len(aset.stored_colors)} colours to {path} "
          f"({time.time() - t0:.0f} s)")
    return 0


def _anchors_list(args) -> int:
    from . import anchors

    names = anchors.available()
    print("\n".join(names) if names else "no shipped anchor sets")
    return 0


def _anchors_show(args) -> int:
    from . import anchors

    a = anchors.load(args.name)
    r = a.recipe
    print(f"name          {a.name}")
    print(f"path          {a.path}")
    print(f"anchors       {a.n_anchors} (from a pool of {len(r.pool())} frames)")
    print(f"recording     {r.n_steps} steps on tracks {r.track_seeds}")
    print(f"              {r.info}")
    print(f"stored        {', '.join(a.stored_colors)}")
    for k, v in a.meta.get("versions", {}).items():
        print(f"  {k:12s}{v}")
    return 0


def _anchors_verify(args) -> int:
    from . import anchors

    a = anchors.load(args.name)
    for color in args.colors or a.stored_colors:
        a.frames(color)  # stored frames match their checksums (raises otherwise)
    result = anchors.verify(a, args.colors)
    for color, ok in result.items():
        print(f"{color:8s} {'replay identical to stored frames' if ok else 'MISMATCH'}")
    return 0 if all(result.values()) else 1


def _anchors_grid(args) -> int:
    import numpy as np
    import pygame

    from . import anchors, files
    from .envs import color_name

    out = Path(args.out)
    files.check_new(out, overwrite=args.overwrite)
    if out.suffix.lower() not in (".png", ".bmp", ".tga", ".jpg", ".jpeg"):
        raise ValueError(f"--out {out}: the image format comes from the suffix: .png, .bmp, .tga, .jpg or .jpeg")
    a = anchors.load(args.name)
    colors = [color_name(c) for c in args.colors or a.stored_colors]
    if args.count > a.n_anchors:
        raise ValueError(f"--count {args.count}: the set {a.name!r} has {a.n_anchors} anchors")
    pick = np.linspace(0, a.n_anchors - 1, args.count).astype(int)
    rows = [np.concatenate(list(a.frames(c)[pick]), axis=1) for c in colors]
    grid = np.concatenate(rows, axis=0)
    with files.atomic_path(out) as tmp:
        pygame.image.save(pygame.surfarray.make_surface(grid.transpose(1, 0, 2)), str(tmp))
    print(f"wrote {out}: anchors {pick.tolist()} (columns) in {', '.join(colors)} (rows)")
    return 0


def _train(args) -> int:
    from dataclasses import replace

    from .training import TrainConfig, TrainingStopped, saved_config, train

    # --resume: the run's own settings where no option is given; one given must agree (train() checks).
    # --from RUN (a new folder): RUN's settings where no option is given; train() checks what changed.
    saved = saved_config(args.out) if args.resume else None
    if args.start_from is not None and saved is None:
        saved = saved_config(args.start_from)
        if saved is None:
            raise FileNotFoundError(f"--from {args.start_from}: no config.json there; give a run folder that "
                                    "relreps train wrote")
    config = TrainConfig(**{name: getattr(saved, name) if saved is not None and name not in args.given
                            else option.value(getattr(args, name)) for name, option in _train_options().items()})
    if args.start_from is not None and saved is not None and "hyperparameters" in args.given:
        # --set adds to (or changes) the origin's overrides; the others stay as the origin trained
        config = replace(config, hyperparameters={**saved.hyperparameters, **config.hyperparameters})
    try:
        model = train(config, args.out, resume=args.resume, progress_bar=args.progress,
                      checkpoint_minutes=args.checkpoint_minutes, keep_agents=args.keep_agents,
                      start_from=args.start_from)
    except TrainingStopped as e:
        print(e, file=sys.stderr)
        return 128 + e.signal
    print(f"trained {model.num_timesteps} steps; run folder {args.out}")
    return 0


def _grid(args) -> int:
    from .grid import MissingDependency, run_grid

    try:
        result = run_grid(args.spec, args.out, address=args.address, cpus_per_run=args.cpus_per_run,
                          gpus_per_run=args.gpus_per_run, ship=args.ship, dry_run=args.dry_run)
    except MissingDependency as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return result.exit_code


def _export(args) -> int:
    import json

    from .training import export_checkpoint

    card = export_checkpoint(args.run, args.out, overwrite=args.overwrite, anchor_embeddings=args.anchor_embeddings)
    steps = json.loads(card.read_text())["training"]["steps"]
    print(f"checkpoint of {args.run} at {steps} steps saved as {card}")
    return 0


def _evaluate(args) -> int:
    from . import files, zoo
    from .evaluation import evaluate, tracks_of

    out = Path(args.out) if args.out else None
    if out is not None:
        files.check_new(out, overwrite=args.overwrite)
    agent = zoo.load(args.agent)
    color = args.color or agent.color
    result = evaluate(agent, color=color, track_seeds=tracks_of(args.track_set, args.tracks),
                      processes=args.processes, max_steps=args.max_steps, actions=args.actions)
    for e in result.episodes:
        print(f"track {e.track_seed}: max return {e.max_return:7.1f}  final {e.final_return:7.1f}  "
              f"steps {e.length:4d}  lap {'yes' if e.lap_finished else 'no'}")
    how = " (sampled actions)" if args.actions == "sampled" else ""
    print(f"{agent.name} on {result.color}{how}: max return {result.mean_max_return:.1f} +- "
          f"{result.std_max_return:.1f} over {len(result.episodes)} tracks ({result.laps} laps finished)")
    if out is not None:
        import json

        out.parent.mkdir(parents=True, exist_ok=True)
        record = {"agent": agent.name, "sha256": agent.card.get("sha256"), "max_steps": args.max_steps,
                  "track_set": args.track_set, **result.summary()}
        from . import files

        files.write_text(out, json.dumps(record, indent=1) + "\n")
        print(f"written to {out}")
    return 0


def _select(args) -> int:
    from . import files, selection, zoo

    out = Path(args.out) if args.out else None
    if out is not None:
        files.check_new(out, overwrite=args.overwrite)

    def show(c: selection.Candidate) -> None:
        steps = f"{c.steps:>9d} steps" if c.steps is not None else " " * 15
        print(f"{c.path}: {steps}  validation max return {c.mean_max_return:7.1f} +- {c.std_max_return:5.1f} "
              f"({c.laps_finished} laps)", flush=True)

    result = selection.select(args.agents, tracks=args.tracks, processes=args.processes, max_steps=args.max_steps,
                              progress=show)
    c = result.chosen
    where = ""
    if Path(c.path).parent.name == zoo.AGENTS_DIR:  # a kept agent: where zoo ship --selected reads its score
        where = f" --out {zoo.kept_evaluation_path(c.path)}"
    print(f"chosen: {c.path} ({c.mean_max_return:.1f} on {len(result.tracks)} validation tracks; a candidate's "
          f"standard error {result.standard_error:.1f}); report its score on the held-out tracks: relreps evaluate "
          f"{c.path} --tracks 10{where}")
    close = result.runners_up()
    if close:
        print(f"{len(close)} other candidate(s) within one standard error: {', '.join(x.name for x in close)}; "
              f"the best of noisy means is optimistic, so expect the held-out score to be lower")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_json(out, {"max_steps": args.max_steps, **result.summary()})
        print(f"written to {out}")
    return 0


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (:func:`relreps.files.write_text`)."""
    import json

    from .files import write_text

    write_text(path, json.dumps(data, indent=1) + "\n")


def _print_table(t: stitching.Table, title: str) -> None:
    print(title)
    rows, cols = list(t["encoders"]), list(t["policies"])
    print("encoder \\ policy " + "".join(f"{c:>14s}" for c in cols))
    for ec in rows:
        cells = t["cells"][ec]
        print(f"{ec:17s}" + "".join(
            f"{cells[pc]['mean_max_return']:8.0f} +-{cells[pc]['std_max_return']:4.0f}" for pc in cols))


def _print_copied(tables: list, known: list, out_dir: Path) -> None:
    """Say how many cells of ``tables`` are the very cells of ``known`` (copied, not driven)."""
    copied = sum(any(c is k["cells"].get(e, {}).get(p) for k in known)
                 for t in tables for e, row in t["cells"].items() for p, c in row.items())
    cells = sum(len(row) for t in tables for row in t["cells"].values())
    print(f"{copied} of {cells} cells copied from earlier tables in {out_dir} (same agents, tracks and steps)")


def _seed_suffix(seed: int) -> str:
    return "" if seed == 1 else f"-s{seed}"


def _protocol_suffix(args) -> str:
    """A table file's name for how its cells were measured: ``-ALIGN`` (``--align``), then
    ``-sampled`` (``--actions sampled``); nothing for the paper's stitch with greedy actions."""
    return (f"-{args.align}" if args.align else "") + ("-sampled" if args.actions == "sampled" else "")


def _table_colors(args) -> list[str]:
    """``relreps table``'s options checked together (ValueError naming the problem): its colours."""
    from .envs import COLORS

    if args.align == "anchor-mean" and "absolute" in args.representations:
        raise ValueError(f"--align {args.align} needs relative agents (an absolute encoder has no anchors); "
                         "pass --representations relative")
    seeds = args.seeds
    if any(s < 1 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {' '.join(map(str, seeds))}: expected distinct training seeds >= 1, e.g. --seeds 1 2")
    if args.cross_seed and len(seeds) < 2:
        raise ValueError("--cross-seed needs two seeds or more, e.g. --seeds 1 2 --cross-seed")
    if args.agent and seeds != [1]:
        raise ValueError("--agent replaces one agent of the seed-1 table; with --seeds, the zoo's agents of each seed "
                         "(ALGO-rel|abs-COLOUR-sSEED) are used")
    if args.algos is not None:
        from .algos import ALGORITHMS

        if len(args.algos) < 2 or len(set(args.algos)) != len(args.algos):
            raise ValueError(f"--algos {' '.join(args.algos)}: expected two distinct algorithms or more among "
                             f"{', '.join(ALGORITHMS)}, e.g. --algos ppo ddqn")
        if args.algo is not None:
            raise ValueError("--algo names the algorithm of single-algorithm tables, --algos the algorithms of the "
                             "tables across algorithms: pass one of the two")
        if args.cross_seed:
            raise ValueError("--algos and --cross-seed: one factor at a time (the tables across algorithms use one "
                             "training seed, --seeds SEED)")
        if len(seeds) != 1:
            raise ValueError(f"--algos takes one training seed (--seeds {' '.join(map(str, seeds))} names "
                             f"{len(seeds)}): the agents of every algorithm with that seed")
        if args.agent:
            raise ValueError("--agent replaces one agent of a single-algorithm table; with --algos, the zoo's agents "
                             "of each algorithm (ALGO-rel|abs-COLOUR) are used")
    colors: list[str] = args.colors or list(COLORS)
    wrong = [c for c in colors if c not in COLORS]
    if wrong or len(set(colors)) != len(colors):
        raise ValueError(f"--colors {' '.join(colors)}: expected distinct colours among {', '.join(COLORS)}"
                         + (f" ({', '.join(wrong)} is not one)" if wrong else ""))
    return colors


def _table_algo(args) -> str:
    """The algorithm of single-algorithm tables: ``--algo``, PPO when not given."""
    return args.algo or "ppo"


def _table_groups(args) -> list:
    """What sets the agents of ``relreps table`` apart: the training seeds, or with ``--algos`` the
    algorithms (one seed)."""
    return list(args.algos) if args.algos else list(args.seeds)


def _table_replaced(args, colors: list[str]) -> dict:
    """``--agent COLOUR=AGENT``: colour -> the loaded agent that replaces the zoo's there."""
    from . import zoo

    replaced = {}  # colour -> loaded agent, from --agent COLOUR=AGENT
    for spec in args.agent or []:
        color, sep, given = spec.partition("=")
        if not sep or not given:
            raise ValueError(f"--agent {spec!r}: expected COLOUR=AGENT, e.g. green=ppo-rel-green-s2")
        if color not in colors:
            raise ValueError(f"--agent {spec!r}: {color!r} is not one of the table's colours ({', '.join(colors)})")
        if color in replaced:
            raise ValueError(f"--agent: two agents for {color}")
        if len(args.representations) != 1:
            raise ValueError("--agent needs a single --representations (the agent has one)")
        try:
            agent = zoo.load(given)
        except zoo.ZooError as e:
            raise ValueError(f"--agent {spec!r}: {e}") from None
        want = {"algo": _table_algo(args), "representation": args.representations[0], "color": color}
        have = {"algo": agent.algo, "representation": agent.representation, "color": agent.color}
        if have != want:
            differ = ", ".join(f"{k} {have[k]} (the table needs {v})" for k, v in want.items() if have[k] != v)
            raise ValueError(f"--agent {spec!r}: {agent.name} has {differ}")
        replaced[color] = agent
    return replaced


def _table_files(args, colors: list[str], replaced: dict) -> dict:
    """The file of each table this command writes, refused now if it exists (not after hours of
    evaluation): representation (and seed) -> file name in ``--out``. A table with replaced agents
    goes to its own file: the zoo's table is never overwritten."""
    out_dir, seeds = Path(args.out), args.seeds
    align_suffix = _protocol_suffix(args)
    replaced_suffix = "".join(f"+{replaced[c].name}" for c in colors if c in replaced)
    names: dict[Any, str]
    algo = _table_algo(args)
    if args.algos:
        names = {rep: f"table-algos-{'-'.join(args.algos)}-{rep}{align_suffix}{_seed_suffix(seeds[0])}.json"
                 for rep in args.representations}
    elif args.cross_seed:
        names = {rep: f"table-{algo}-{rep}{align_suffix}-seeds-{'-'.join(map(str, seeds))}.json"
                 for rep in args.representations}
    else:
        names = {(rep, s): f"table-{algo}-{rep}{align_suffix}{_seed_suffix(s)}{replaced_suffix}.json"
                 for rep in args.representations for s in seeds}
    for name in names.values():
        if (out_dir / name).exists() and not args.overwrite:
            raise ValueError(f"{out_dir / name} exists; pass --overwrite to replace it")
    return names


def _table_agents(args, colors: list[str], replaced: dict) -> dict:
    """Every agent the tables need, loaded, and every stitch among them checked, before any episode:
    (representation, seed or algorithm) -> {colour: agent}."""
    from . import stitching, zoo

    groups = _table_groups(args)

    def algo_seed(group) -> tuple[str, int]:
        return (group, args.seeds[0]) if args.algos else (_table_algo(args), group)

    def source(rep: str, color: str, group):
        algo, seed = algo_seed(group)
        name = zoo.seed_agent_name(algo, rep, color, seed)
        return Path(args.agents_dir) / name if args.agents_dir else name

    agents: dict = {}  # (representation, seed or algorithm) -> {colour: agent}, all loaded before any episode
    for rep in args.representations:
        for g in groups:
            agents[rep, g] = {}
            algo, seed = algo_seed(g)
            for color in colors:
                if color in replaced:
                    agents[rep, g][color] = replaced[color]
                    continue
                try:
                    agents[rep, g][color] = zoo.load(source(rep, color, g))
                except zoo.ZooError as e:
                    others = ", ".join(zoo.variants(algo, rep, color)) or "none"
                    what = f"{algo}, {rep} {color}" if args.algos else f"seed {seed}, {rep} {color}"
                    raise ValueError(f"{what}: {e} (other seeds of this agent in the zoo: {others})") from None
    cross = args.cross_seed or bool(args.algos)
    for rep in args.representations:  # every stitch the tables need, refused before any file or episode
        for s in groups:
            for t in (groups if cross else [s]):
                for enc in agents[rep, s].values():
                    for pol in agents[rep, t].values():
                        if enc is not pol:
                            stitching.check_stitchable(enc, pol, align=args.align)
    return agents


def _table(args) -> int:
    import json

    from . import stitching
    from .evaluation import EVAL_TRACKS

    colors = _table_colors(args)
    replaced = _table_replaced(args, colors)
    names = _table_files(args, colors, replaced)
    agents = _table_agents(args, colors, replaced)
    out_dir, seeds, algo = Path(args.out), args.seeds, _table_algo(args)
    align_suffix = _protocol_suffix(args)
    out_dir.mkdir(parents=True, exist_ok=True)
    tracks = EVAL_TRACKS[: args.tracks]
    how = (f", stitches aligned by {args.align}" if args.align else "") + (
        ", sampled actions" if args.actions == "sampled" else "")

    def earlier(rep: str) -> list:
        """Tables already in the output folder, whose cells are copied where the encoder's and the
        policy's weights (their sha256) and the protocol (tracks, steps, alignment, actions) are the
        same (:func:`relreps.stitching.table` checks both): first the single tables of the seeds or
        algorithms read here, e.g. the zoo's own table when one agent is replaced, then every other
        table file there, e.g. the tables with one agent swapped or an earlier --cross-seed file's
        tables. A file that is not such a table is passed over."""
        first = ([f"table-{a}-{rep}{align_suffix}{_seed_suffix(seeds[0])}.json" for a in args.algos] if args.algos
                 else [f"table-{algo}-{rep}{align_suffix}{_seed_suffix(s)}.json" for s in seeds])
        rest = sorted(p.name for p in out_dir.glob("table-*.json") if p.name not in first)
        found = []
        for name in [*first, *rest]:
            try:
                data = json.loads((out_dir / name).read_text())
            except (OSError, ValueError):
                continue
            parts = data.get("tables") if isinstance(data, dict) else None
            found += [t for t in (parts.values() if isinstance(parts, dict) else [data]) if stitching.copyable(t)]
        return found

    for rep in args.representations:
        # the seed-1 table (the paper's Table 1) is always driven; another seed's, e.g. a second
        # Table 1 whose cells a --cross-seed file already holds, copies what is known
        known = earlier(rep) if (replaced or args.cross_seed or args.algos or seeds != [1]) else None
        if args.cross_seed or args.algos:
            factor = "algo" if args.algos else "seed"
            made = stitching.algorithm_tables if args.algos else stitching.seed_tables
            groups = _table_groups(args)
            result = made({g: agents[rep, g] for g in groups}, track_seeds=tracks, processes=args.processes,
                          max_steps=args.max_steps, align=args.align, known=known, actions=args.actions)
            result.update(representation=rep, score="mean and std of the episode maximum return",
                          **({"seed": seeds[0]} if args.algos else {"algo": algo}),
                          **({"align": args.align} if args.align else {}),
                          **({"actions": args.actions} if args.actions != "greedy" else {}))
            which = algo if factor == "seed" else f"seed {seeds[0]}"
            if known:
                _print_copied(list(result["tables"].values()), known, out_dir)
            _print_factor_tables(result, factor, f"{rep} stitching ({which}{how})")
            path = out_dir / names[rep]
            _write_json(path, result)
            print(f"written to {path}")
            continue
        for s in seeds:
            known_s = known if (replaced or s != 1) else None
            t = stitching.table(agents[rep, s], agents[rep, s], track_seeds=tracks, processes=args.processes,
                                max_steps=args.max_steps, align=args.align, known=known_s, actions=args.actions)
            if known_s:
                _print_copied([t], known_s, out_dir)
            t["algo"], t["representation"] = algo, rep
            t["score"] = "mean and std of the episode maximum return"
            path = out_dir / names[rep, s]
            _write_json(path, t)
            seed_note = f", seed {s}" if seeds != [1] else ""
            _print_table(t, f"{rep} stitching ({algo}{how}{seed_note}), encoder (rows) x policy (columns), "
                            f"{len(t['tracks'])} tracks:")
            print(f"written to {path}")
    return 0


def _print_factor_tables(result: dict, factor: str, what: str) -> None:
    """Print :func:`relreps.stitching.seed_tables`' or :func:`~relreps.stitching.algorithm_tables`'
    tables, then each colour pair as mean +- std over the pairs, then the groups."""
    from .stitching import FACTORS

    word = FACTORS[factor][1]
    colors = result["colors"]
    def label(value: str) -> str:
        return f"{word}-{value}" if factor == "seed" else value

    for key, t in result["tables"].items():
        enc, _, pol = key.partition("-")
        _print_table(t, f"{what}, {label(enc)} encoders (rows) x {label(pol)} policies (columns), "
                        f"{len(t['tracks'])} tracks:")
    print(f"cells as mean +- std over the (encoder {word}, policy {word}) pairs:")
    print("encoder \\ policy " + "".join(f"{c:>14s}" for c in colors))
    for ec in colors:
        cells = result["summary"]["cells"][ec]
        print(f"{ec:17s}" + "".join(f"{cells[pc]['mean']:8.0f} +-{cells[pc]['std']:4.0f}" for pc in colors))
    for group, g in result["summary"]["groups"].items():
        ratio = f", {g['ratio']:.2f} of the agents alone" if "ratio" in g else ""
        print(f"  {group:16s} {g['mean']:6.0f} over {g['cells']} cells{ratio}; worst {g['worst']:.0f} "
              f"({g['worst_cell']})")


def _zoo_ship(args) -> int:
    from . import zoo

    try:
        card = zoo.ship(args.run, args.name, dest=args.dest, overwrite=args.overwrite, selected=args.selected)
    except FileExistsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"shipped {args.run} as {args.name}: {card}")
    return 0


def _zoo_list(args) -> int:
    from . import zoo

    names = zoo.available()
    if not names:
        print("no shipped agents")
    for name in names:
        card = zoo.card(name)
        final = zoo.score(card) or {}
        steps = card.get("training", {}).get("steps")
        score = final.get("mean_max_return")
        print(f"{name:20s} {card['algo']:5s} {card['representation']:9s} {card['color']:7s} "
              f"{steps or '?':>8} steps  " + (f"{score:6.1f} on {len(final['tracks'])} held-out tracks" if score is not None else ""))
    return 0


def _bench_env(args) -> int:
    from .bench import bench_env

    result = bench_env(
        tracks=args.tracks, steps_per_track=args.steps, seed=args.seed, rasterizer=args.rasterizer
    )
    print(result.report())
    if args.profile:
        from .bench import profile_fast

        print(profile_fast(tracks=args.tracks, steps_per_track=args.steps, seed=args.seed).report())
    return 0 if result.mismatches == 0 else 1


def _bench_update(args) -> int:
    from .bench import bench_update

    print(bench_update(latent_dim=args.latent_dim, n_anchors=args.n_anchors, n_steps=args.steps,
                       repeats=args.repeats).report())
    return 0


def _bench_train(args) -> int:
    from .bench import bench_train

    print(bench_train(args.variants, updates=args.updates, n_envs=args.envs, n_steps=args.n_steps,
                      workers=args.workers, representation=args.representation, eval_tracks=args.eval_tracks,
                      eval_max_steps=args.eval_max_steps, sb3_vec=args.sb3_vec, seed=args.seed,
                      device=args.device).report())
    return 0


def _latent_analysis(args) -> int:
    import dataclasses
    import json

    from . import files, latent, stitching, zoo

    if args.out:  # before any work
        files.check_new(args.out, overwrite=args.overwrite)
    a, b = zoo.load(args.agent_a), zoo.load(args.agent_b)
    suffix = "-reembedded" if args.reembed_anchors else ""
    out = Path(args.out) if args.out else Path("results") / f"latent-{a.name}-{b.name}{suffix}.json"
    files.check_new(out, overwrite=args.overwrite)
    if a.name == b.name:  # e.g. two runs' RUN/agent.json: told apart by what was given
        given = (args.agent_a, args.agent_b) if args.agent_a != args.agent_b else (f"{a.name} (A)", f"{b.name} (B)")
        a, b = dataclasses.replace(a, name=str(given[0])), dataclasses.replace(b, name=str(given[1]))
    colors = tuple(args.colors) if args.colors else (a.color, b.color)
    drift = {}
    if args.reembed_anchors:  # a diagnostic: the anchors as each final encoder embeds them
        drift = {x.name: latent.anchor_drift(x) for x in (a, b)}
        for name, d in drift.items():
            print(f"{name}: saved anchor embeddings vs re-embedded: cosine {d['mean_cosine']:.3f} "
                  f"(min {d['min_cosine']:.3f}), norm ratio {d['norm_ratio']:.3f}")
        a, b = latent.reembedded(a), latent.reembedded(b)
    track = latent.LATENT_TRACK_SEED if args.track_seed is None else args.track_seed
    drive = latent.parallel_drive(colors, n_steps=args.steps, stride=args.stride, seed=args.seed,
                                  first_track_seed=track)
    c = latent.compare(a, b, drive, colors=colors, tolerance=args.tolerance)
    m = c.metrics
    try:  # each stitch on its encoder's colour, judged frame by frame against the policy's own agent
        actions: dict[str, Any] = dict(stitching.stitch_agreement(a, b, drive))
    except ValueError as e:
        actions = {"not_stitchable": str(e)}
    aligned = None
    if c.representation == "relative" and "not_stitchable" not in actions:
        aligned = stitching.stitch_agreement(a, b, drive, align="anchor-mean")
    result = {
        **c.to_dict(),
        "drive": {"track_seeds": drive.recipe.track_seeds, "steps": drive.recipe.n_steps, "stride": args.stride,
                  "frames": len(drive), "burst_seed": args.seed, "driver": drive.recipe.info.get("driver")},
        "matched_per_frame": [round(float(v), 5) for v in c.sim.diagonal()],
        **({"reembedded_anchors": True, "anchor_drift": drift} if drift else {}),
        "stitch_agreement": actions,
        **({"stitch_agreement_anchor_mean": aligned} if aligned else {}),
    }
    from . import files

    files.write_text(out, json.dumps(result, indent=1) + "\n")
    print(f"{c.label}, {c.representation}, {m.n} parallel frames:")
    print(f"  mean cosine, matched frames   {m.matched:.3f}")
    print(f"  mean cosine, unmatched pairs  {m.unmatched:.3f}  (gap {m.gap:+.3f})")
    print(f"  retrieval top-1               {m.top1:.1%}  (within +-{m.tolerance} frames: {m.top1_within:.1%})")
    print(f"  mean rank of matched frame    {m.mean_rank:.1f}  (chance {(m.n + 1) / 2:.1f})")
    if c.cka is not None:
        print(f"  linear CKA                    {c.cka:.3f}  (alike up to a rotation: 1)")
    if "not_stitchable" in actions:
        print(f"  greedy actions: not compared ({actions['not_stitchable']})")
    else:
        print(f"  greedy actions, each agent on its own colour: the two agents agree on "
              f"{actions['agents_agree']:.1%} of frames")
        stitched = {**actions["stitched"], **(aligned["stitched"] if aligned else {})}
        for name, st in stitched.items():
            print(f"  {name} (on {st['encoder']}'s colour) picks {st['policy']}'s action on "
                  f"{st['with_policy_agent']:.1%} of frames; where that agent picks an action, the stitch "
                  "picks it too on: " + ", ".join(f"{k} {v:.0%}" for k, v in st["recall"].items()))
    print(f"written to {out}")
    return 0


#: ``relreps train --standardize`` choices -> TrainConfig.standardize.
_STANDARDIZE: dict[str, bool | str] = {"per-dimension": True, "center": "center", "none": False}
#: ``relreps evaluate`` and ``relreps table --actions``: what each choice does.
ACTIONS_HELP = ("greedy: each agent's most probable action (the paper's protocol, every score of the zoo); "
                "sampled: drawn from its action probabilities, seeded by the track (as the authors' follow-up "
                "scored; relreps.evaluation.ACTION_RULES)")
#: ``relreps train --latent-norm`` choices -> TrainConfig.latent_norm.
_LATENT_NORM = {"auto": "auto", "layer": "layer", "rms": "rms", "none": None}


def _choice_of(choices: dict, value) -> str:
    """The command-line choice that maps to ``value`` (a TrainConfig default): one source of truth."""
    return next(k for k, v in choices.items() if v is value or (isinstance(v, str) and v == value))


@dataclass(frozen=True)
class _Option:
    """A ``relreps train`` option for one :class:`~relreps.training.TrainConfig` field: its flag,
    how its text is parsed, the TrainConfig value of the parsed text (``value``) and back
    (``shown``, for the default)."""

    flag: str
    kwargs: dict = field(default_factory=dict)
    to_config: Callable[[Any], Any] | None = None
    from_config: Callable[[Any], Any] | None = None

    def value(self, parsed):
        return parsed if self.to_config is None else self.to_config(parsed)

    def shown(self, default):
        return default if self.from_config is None else self.from_config(default)


def _train_options() -> dict[str, _Option]:
    """Every TrainConfig field as a ``relreps train`` option (a test checks none is missing): the
    defaults and the help come from TrainConfig itself, so the command line cannot disagree with it."""
    from .algos import ALGORITHMS
    from .evaluation import EVAL_TRACKS
    from .precision import PRECISIONS
    from .training import ANCHOR_UPDATES, REPRESENTATIONS, parse_overrides
    from .zoo import ANCHOR_EMBEDDINGS

    return {
        "algo": _Option("--algo", {"choices": ALGORITHMS}),
        "representation": _Option("--representation", {"choices": REPRESENTATIONS}),
        "color": _Option("--color"),
        "seed": _Option("--seed", {"type": _at_least(0)}),
        "total_steps": _Option("--steps", {"type": _at_least(1)}),
        "n_envs": _Option("--envs", {"type": _at_least(1)}),
        "workers": _Option("--workers", {"type": _at_least(0)}),
        "device": _Option("--device"),
        "anchors": _Option("--anchors"),
        "n_anchors": _Option("--n-anchors", {"type": _at_least(1)}),
        "latent_dim": _Option("--latent-dim", {"type": _latent}, from_config=lambda v: "none" if v is None else v),
        "latent_norm": _Option("--latent-norm", {"choices": list(_LATENT_NORM)}, _LATENT_NORM.__getitem__,
                               lambda v: _choice_of(_LATENT_NORM, v)),
        "alpha": _Option("--alpha", {"type": float}),
        "anchor_update": _Option("--anchor-update", {"choices": ANCHOR_UPDATES}),
        "anchor_embeddings": _Option("--anchor-embeddings", {"choices": ANCHOR_EMBEDDINGS}),
        "freeze_encoder": _Option("--freeze-encoder", {"choices": ["yes", "no"]}, lambda v: v == "yes",
                                  lambda v: "yes" if v else "no"),
        "std_floor": _Option("--std-floor", {"type": float}),
        "standardize": _Option("--standardize", {"choices": list(_STANDARDIZE)}, _STANDARDIZE.__getitem__,
                               lambda v: _choice_of(_STANDARDIZE, v)),
        "head_dim": _Option("--head-dim", {"type": _at_least(1)}),
        "eval_every": _Option("--eval-every", {"type": _at_least(0)}),
        "eval_tracks": _Option("--eval-tracks", {"type": _track_count, "metavar": "N"},
                               lambda n: EVAL_TRACKS[:n], len),
        "eval_max_steps": _Option("--eval-max-steps", {"type": _at_least(1)}),
        "checkpoint_every": _Option("--checkpoint-every", {"type": _at_least(0)}),
        "hyperparameters": _Option("--set", {"action": "append", "metavar": "KEY=VALUE"}, parse_overrides,
                                   lambda v: []),
        "precision": _Option("--precision", {"choices": PRECISIONS}),
    }


#: Help that the command line adds to a field's documentation (its own spelling of the values).
_TRAIN_HELP = {
    "latent_dim": "'none': the 3136 convolution features.",
    "latent_norm": "On the command line: auto, layer, rms or none.",
    "standardize": "On the command line: center, per-dimension (True) or none (False).",
    "eval_tracks": "On the command line: how many of the held-out tracks (1-10).",
    "hyperparameters": "On the command line: --set KEY=VALUE, repeated, e.g. --set n_steps=64.",
}


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    from dataclasses import fields

    from .training import TrainConfig

    docs = TrainConfig.field_docs()
    defaults = {f.name: (f.default_factory() if callable(f.default_factory) else f.default)
                for f in fields(TrainConfig)}
    for name, option in _train_options().items():
        shown = option.shown(defaults[name])
        text = " ".join(filter(None, [docs[name], _TRAIN_HELP.get(name)]))
        if shown not in (None, []):
            text += f" (default: {shown})"
        kwargs = dict(option.kwargs)
        if "choices" not in kwargs:
            kwargs.setdefault("metavar", option.flag[2:].upper().replace("-", "_"))
        action = _GivenAppend if kwargs.pop("action", "store") == "append" else _Given
        parser.add_argument(option.flag, dest=name, default=shown, help=text.replace("%", "%%"), action=action,
                            **kwargs)
    parser.set_defaults(given=())


class _Given(argparse.Action):
    """Stores an option's value (as ``store`` does) and records that it was given on the command
    line (``args.given``), so that ``--resume`` can tell a setting asked for from a default."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self._value(namespace, values))
        namespace.given = (*getattr(namespace, "given", ()), self.dest)

    def _value(self, namespace, values):
        return values


class _GivenAppend(_Given):
    """``append`` (a repeatable option, e.g. ``--set``), recording that it was given."""

    def _value(self, namespace, values):
        return [*(getattr(namespace, self.dest, None) or []), values]


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line (the command, the problem, where to read more)."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _at_least(low: int):
    """An argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _minutes(text: str) -> float:
    """An argparse type: a finite number of minutes >= 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of minutes >= 0, got {text!r}") from None
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a number of minutes >= 0, got {text}")
    return value


def _track_count(text: str) -> int:
    """An argparse type: how many of the held-out tracks (:func:`relreps.evaluation.held_out_tracks`)."""
    from .evaluation import EVAL_TRACKS, held_out_tracks

    try:
        return len(held_out_tracks(int(text)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of held-out tracks from 1 to {len(EVAL_TRACKS)}, "
                                         f"got {text!r}") from None


def _latent(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'none', got {text!r}") from None


def _add_anchors(sub) -> None:
    """``relreps anchors``."""
    from .envs import COLORS

    a = sub.add_parser("anchors", help="collect, inspect and verify parallel anchor sets")
    asub = a.add_subparsers(dest="action", required=True)
    c = asub.add_parser("collect", help="record a drive, pick anchors, replay them in colours")
    c.add_argument("name")
    c.add_argument("--out", help="folder to write (default: anchors/NAME)")
    c.add_argument("--steps", type=_at_least(1), default=4000, help="steps to record (default 4000)")
    c.add_argument("--n-anchors", type=_at_least(1), default=3136, help="anchors to keep (default 3136)")
    c.add_argument("--colors", nargs="+", default=list(COLORS), help="colours to store")
    c.add_argument("--seed", type=int, default=0, help="seed of the bursts and the anchor draw")
    c.add_argument("--driver", default="scripted",
                   help="'scripted' (centre-line driver) or a trained agent: zoo name or agent file")
    c.add_argument("--burst-every", type=_at_least(1), default=200)
    c.add_argument("--burst-length", type=_at_least(0), default=100)
    c.add_argument("--overwrite", action="store_true", help="replace an existing set at --out")
    c.set_defaults(func=_anchors_collect)
    ls = asub.add_parser("list", help="shipped anchor sets")
    ls.set_defaults(func=_anchors_list)
    s = asub.add_parser("show", help="describe an anchor set")
    s.add_argument("name")
    s.set_defaults(func=_anchors_show)
    v = asub.add_parser("verify", help="replay the recipe and compare with the stored frames")
    v.add_argument("name")
    v.add_argument("--colors", nargs="+")
    v.set_defaults(func=_anchors_verify)
    g = asub.add_parser("grid", help="save a PNG grid: some anchors (columns) in each colour (rows)")
    g.add_argument("name")
    g.add_argument("--out", required=True)
    g.add_argument("--count", type=_at_least(1), default=8)
    g.add_argument("--colors", nargs="+")
    g.add_argument("--overwrite", action="store_true")
    g.set_defaults(func=_anchors_grid)


def _add_train(sub) -> None:
    """``relreps train``."""
    from .training import CHECKPOINT_MINUTES

    t = sub.add_parser("train", help="train an agent (resumable run folder)")
    t.add_argument("--out", required=True, help="run folder (refused if it exists, unless --resume)")
    _add_train_options(t)
    t.add_argument("--resume", action="store_true",
                   help="continue the run folder's last checkpoint with the run's own settings (its "
                        "config.json): `relreps train --out RUN --resume` is enough; a setting given as well "
                        "must agree with the run's (device and workers may change)")
    t.add_argument("--from", dest="start_from", metavar="RUN",
                   help="start the new run folder --out from RUN's latest checkpoint (weights, optimiser, "
                        "steps and logs; RUN is only read) with RUN's settings, changing only those given: "
                        "how long and how it goes on training (--steps, counting RUN's steps too; --alpha, "
                        "--anchor-update, --anchor-embeddings, --freeze-encoder, --set (added to RUN's), "
                        "--precision, the evaluation and checkpoint settings) or where (--device, --workers). "
                        "E.g. --from RUN --alpha 0 --steps 2200000 ends training with re-embedded anchors. "
                        "Recorded in NEW/origin.json and the agent card")
    t.add_argument("--progress", action="store_true", help="show a progress bar")
    t.add_argument("--checkpoint-minutes", type=_minutes, default=CHECKPOINT_MINUTES, metavar="M",
                   help=f"also save a checkpoint every M minutes of wall time (default {CHECKPOINT_MINUTES:g}; 0: "
                        "only every --checkpoint-every steps). Ctrl-C or SIGTERM saves one and stops "
                        "(exit status 130 or 143); resume with --resume")
    t.add_argument("--keep-agents", action="store_true",
                   help="also save an agent file at every --checkpoint-every checkpoint, in RUN/agents/STEPS.json, "
                        "to choose one on validation tracks afterwards (relreps select RUN); "
                        "give it again when resuming")
    t.set_defaults(func=_train)


def _add_grid(sub) -> None:
    """``relreps grid``."""
    gr = sub.add_parser("grid", help="train a grid of runs (a YAML spec of TrainConfig fields; a list is an axis) "
                                     "as Ray tasks, on this machine or a cluster; resumable",
                        description="Train every point of a grid spec as a Ray task, in --out/NAME (the zoo's "
                                    "names); run the same command again to resume. Exit status: 0 every run "
                                    "finished, 1 a run failed, 3 with --ship some runs are below the bar, "
                                    "130 interrupted.")
    gr.add_argument("spec", help="YAML file: TrainConfig fields; a list makes a field an axis (see grids/*.yaml)")
    gr.add_argument("--out", required=True, help="folder of the run folders, one per grid point, named as the zoo "
                                                 "names agents (on a cluster: a folder every node sees)")
    gr.add_argument("--address", help="join this Ray cluster (auto, HOST:6379 or ray://HOST:10001); default: start "
                                      "a local Ray on this machine's cores")
    gr.add_argument("--cpus-per-run", type=float, default=1.0, metavar="N",
                    help="CPUs per run (default 1); a spec without workers gives each run N environment "
                         "processes (none below 2)")
    gr.add_argument("--gpus-per-run", type=float, default=0.0, metavar="F",
                    help="GPU share per run, e.g. 0.25: four runs per GPU (default 0: CPU only)")
    gr.add_argument("--ship", metavar="ZOO", help="evaluate finished runs on 10 held-out tracks and ship those "
                                                  "with a mean max return >= 750 into this zoo folder")
    gr.add_argument("--dry-run", action="store_true", help="check the spec and --out, print the runs; start nothing")
    gr.set_defaults(func=_grid)


def _add_export(sub) -> None:
    """``relreps export``."""
    from .zoo import ANCHOR_EMBEDDINGS

    ex = sub.add_parser("export", help="save a run's latest checkpoint as an agent file (to evaluate or "
                                       "stitch a run that is still training)")
    ex.add_argument("run", help="run folder (with config.json and checkpoint.pt)")
    ex.add_argument("--out", required=True, help="agent path without suffix, e.g. /tmp/rel-red-1M")
    ex.add_argument("--overwrite", action="store_true")
    ex.add_argument("--anchor-embeddings", choices=ANCHOR_EMBEDDINGS, default=None,
                    help="relative runs: keep the moving-average anchor embeddings the policy trained with "
                         "(saved) or leave them out (reembedded); default: as the run was configured")
    ex.set_defaults(func=_export)


def _add_evaluate(sub) -> None:
    """``relreps evaluate``."""
    from .evaluation import ACTION_RULES, TRACK_SETS

    ev = sub.add_parser("evaluate", help="evaluate one agent on held-out tracks")
    ev.add_argument("agent", help="shipped agent name or card path")
    ev.add_argument("--color", help="track colour (default: the agent's)")
    ev.add_argument("--tracks", type=_track_count, default=10, help="how many of the held-out tracks")
    ev.add_argument("--track-set", choices=list(TRACK_SETS), default="held-out",
                    help="held-out (the reported scores, default) or validation (for choosing checkpoints: "
                         "relreps select)")
    ev.add_argument("--processes", type=_at_least(1), help="worker processes (default: one per core)")
    ev.add_argument("--max-steps", type=_at_least(1), default=1000)
    ev.add_argument("--actions", choices=ACTION_RULES, default="greedy", help=ACTIONS_HELP)
    ev.add_argument("--out", help="also write the results as JSON (e.g. results/eval-NAME.json)")
    ev.add_argument("--overwrite", action="store_true")
    ev.set_defaults(func=_evaluate)


def _add_select(sub) -> None:
    """``relreps select``."""
    se = sub.add_parser("select", help="choose among a run's checkpoints (agent files) by their score on "
                                       "validation tracks, which no reported score uses")
    se.add_argument("agents", nargs="+", metavar="RUN_OR_AGENT",
                    help="a run folder trained with --keep-agents (its kept agents; each one's validation "
                         "episodes are stored beside it, RUN/agents/STEPS.validation.json), or two or more "
                         "agent cards or zoo names of one colour")
    se.add_argument("--tracks", type=_track_count, default=10, help="how many validation tracks (default: all 10)")
    se.add_argument("--processes", type=_at_least(1), help="worker processes (default: one per core)")
    se.add_argument("--max-steps", type=_at_least(1), default=1000)
    se.add_argument("--out", help="also write every candidate's score and the choice as JSON")
    se.add_argument("--overwrite", action="store_true")
    se.set_defaults(func=_select)


def _add_table(sub) -> None:
    """``relreps table``."""
    from .algos import ALGORITHMS
    from .evaluation import ACTION_RULES
    from .stitching import ALIGNMENTS
    from .training import REPRESENTATIONS

    tb = sub.add_parser("table", help="the encoder-by-policy stitching tables (paper's Table 1)")
    tb.add_argument("--algo", choices=ALGORITHMS, help="the agents' algorithm (default ppo)")
    tb.add_argument("--representations", nargs="+", default=list(REPRESENTATIONS), choices=REPRESENTATIONS)
    tb.add_argument("--colors", nargs="+", help="default: green red blue yellow")
    tb.add_argument("--agents-dir", help="folder of agents named ALGO-rel|abs-COLOUR (default: the zoo, $RELREPS_ZOO or the shipped one)")
    tb.add_argument("--tracks", type=_track_count, default=10, help="how many of the held-out tracks")
    tb.add_argument("--processes", type=_at_least(1))
    tb.add_argument("--max-steps", type=_at_least(1), default=1000)
    tb.add_argument("--actions", choices=ACTION_RULES, default="greedy",
                    help=ACTIONS_HELP + "; a sampled table is written to table-...[-ALIGN]-sampled.json")
    tb.add_argument("--align", choices=[a for a in ALIGNMENTS if a],
                    help="not in the paper (relreps.stitching): anchor-mean (relative only) moves each stitch's "
                         "representation by the two agents' anchor means; affine maps the encoder's output with "
                         "the (ridge) least-squares affine map fitted on parallel anchor frames (relative or absolute). "
                         "Written to table-ALGO-REPRESENTATION-ALIGN.json")
    tb.add_argument("--agent", action="append", metavar="COLOUR=AGENT",
                    help="use AGENT (a zoo name or card path, of that colour) for COLOUR instead of "
                         "ALGO-rel|abs-COLOUR, e.g. green=ppo-rel-green-s2; repeatable; the table is written "
                         "to table-ALGO-REPRESENTATION[-ALIGN]+AGENT.json")
    tb.add_argument("--seeds", nargs="+", type=int, default=[1], metavar="SEED",
                    help="training seeds: each seed's agents (ALGO-rel|abs-COLOUR for seed 1, "
                         "ALGO-rel|abs-COLOUR-sSEED for another) make their own table, written to "
                         "table-ALGO-REPRESENTATION[-ALIGN][-sSEED].json (default: 1, the paper's Table 1)")
    tb.add_argument("--cross-seed", action="store_true",
                    help="with two seeds or more: every pair (encoder seed, policy seed), the same colour's "
                         "cell included, and each colour pair's mean +- std over the pairs, written to "
                         "table-ALGO-REPRESENTATION[-ALIGN]-seeds-S1-S2....json")
    tb.add_argument("--algos", nargs="+", choices=ALGORITHMS, metavar="ALGO",
                    help="two algorithms or more (e.g. ppo ddqn): every pair (encoder algorithm, head algorithm), "
                         "the same colour's cell included, with the zoo's agents ALGO-rel|abs-COLOUR[-sSEED] of "
                         "one --seeds SEED, and each colour pair's mean +- std over the pairs, written to "
                         "table-algos-A1-A2...-REPRESENTATION[-ALIGN][-sSEED].json")
    tb.add_argument("--out", default="results",
                    help="folder for table-ALGO-REPRESENTATION[-ALIGN].json; with --agent, --cross-seed, "
                         "--algos or a seed other than 1, a cell that a table already there measured with the "
                         "same agents' weights (sha256), tracks, steps, alignment and actions is copied, not "
                         "driven again (table-ALGO-REPRESENTATION[-ALIGN].json, the seed-1 table, is always "
                         "driven; another file is not driven again over itself even with --overwrite: move "
                         "it away to drive it afresh)")
    tb.add_argument("--overwrite", action="store_true", help="replace a table file that exists")
    tb.set_defaults(func=_table)


def _add_zoo(sub) -> None:
    """``relreps zoo``."""
    z = sub.add_parser("zoo", help="the shipped agents: list them, ship a finished run")
    zsub = z.add_subparsers(dest="action", required=True)
    zl = zsub.add_parser("list", help="shipped agents with their training steps and final scores")
    zl.set_defaults(func=_zoo_list)
    zs = zsub.add_parser("ship", help="copy a finished run's agent and logs into the zoo as NAME")
    zs.add_argument("run", help="a finished run folder (relreps train --out)")
    zs.add_argument("name", help="e.g. ppo-rel-green (what relreps table looks for)")
    zs.add_argument("--dest", help="zoo folder (default: $RELREPS_ZOO, else the package's relreps/data/zoo)")
    zs.add_argument("--overwrite", action="store_true")
    zs.add_argument("--selected", action="store_true",
                    help="ship the checkpoint that RUN/selection.json chose on validation tracks (relreps select "
                         "RUN --out RUN/selection.json) instead of the final agent; its 10-track "
                         "evaluation: relreps evaluate RUN/agents/STEPS.json --out RUN/agents/STEPS.eval-10-tracks.json")
    zs.set_defaults(func=_zoo_ship)


def _add_latent(sub) -> None:
    """``relreps latent``."""
    la = sub.add_parser("latent", help="compare two agents' encoders, and the greedy actions of their "
                        "two stitches, on one drive replayed in their colours")
    la.add_argument("agent_a", help="shipped agent name or card path (sees the drive in its colour)")
    la.add_argument("agent_b", help="shipped agent name or card path")
    la.add_argument("--steps", type=_at_least(1), default=1000, help="steps to record (default 1000)")
    la.add_argument("--stride", type=_at_least(1), default=4, help="keep every STRIDE-th frame (default 4)")
    la.add_argument("--colors", nargs=2, metavar=("CA", "CB"), help="frame colours (default: each agent's own)")
    la.add_argument("--tolerance", type=_at_least(0), default=2,
                    help="kept frames either side that still count as a hit (default 2)")
    la.add_argument("--seed", type=int, default=0, help="seed of the random bursts")
    la.add_argument("--track-seed", type=int, help="first track of the drive (default: relreps.latent's "
                    "LATENT_TRACK_SEED, a track no training, anchor or evaluation run uses)")
    la.add_argument("--reembed-anchors", action="store_true",
                    help="relative agents: re-embed each one's anchors with its final weights first "
                         "(as an agent file without anchor embeddings loads, relreps train "
                         "--anchor-embeddings reembedded; prints how far the saved average lagged)")
    la.add_argument("--out", help="JSON file (default: results/latent-A-B.json)")
    la.add_argument("--overwrite", action="store_true")
    la.set_defaults(func=_latent_analysis)


def _add_bench(sub) -> None:
    """``relreps bench``."""
    from .bench import SB3_VEC, TRAIN_BASES, TRAIN_DEFAULT, TRAIN_OPTIONS
    from .training import REPRESENTATIONS

    b = sub.add_parser("bench", help="speed benchmarks")
    bsub = b.add_subparsers(dest="what", required=True)
    e = bsub.add_parser("env", help="fast vs stock renderer, side by side, one core")
    e.add_argument("--tracks", type=_at_least(1), default=4)
    e.add_argument("--steps", type=_at_least(1), default=500, help="steps per track")
    e.add_argument("--seed", type=int, default=0, help="draws the tracks, actions and a random colour")
    e.add_argument("--rasterizer", choices=["numba", "gfxdraw"],
                   help="how the fast renderer draws polygons (default: numba if installed)")
    e.add_argument("--profile", action="store_true",
                   help="then time the parts of a fast step (numba), same tracks and actions")
    e.set_defaults(func=_bench_env)
    u = bsub.add_parser("update", help="PPO update cost: relative vs absolute encoder, side by side")
    u.add_argument("--latent-dim", type=_at_least(1), help="encoder output (default: 3136 convolution features)")
    u.add_argument("--n-anchors", type=_at_least(1), help="anchors (default: all 3136 of the shipped set)")
    u.add_argument("--steps", type=_at_least(1), default=256, help="rollout steps per environment (2 envs)")
    u.add_argument("--repeats", type=_at_least(1), default=3)
    u.set_defaults(func=_bench_update)
    bt = bsub.add_parser("train", help="end-to-end training speed: stock SB3 + gymnasium, relreps fp32, "
                                      "auto (bf16 where native) PPO, Double DQN (ddqn), interleaved update by update")
    bt.add_argument("--variants", nargs="+", default=list(TRAIN_DEFAULT),
                    help=f"bases {', '.join(TRAIN_BASES)}, each with ':'-separated options: "
                         f"{'; '.join(TRAIN_OPTIONS)} (e.g. fp32:threads=1/2 bf16:channels-last)")
    bt.add_argument("--updates", type=_at_least(1), default=2, help="timed PPO updates per variant (after one warm-up)")
    bt.add_argument("--envs", type=_at_least(1), default=16, help="parallel environments (default 16)")
    bt.add_argument("--n-steps", type=_at_least(1), default=128, help="steps per environment per rollout (default 128)")
    bt.add_argument("--workers", type=_at_least(0), help="relreps environment processes (default: one per core)")
    bt.add_argument("--representation", choices=REPRESENTATIONS, default="relative")
    bt.add_argument("--eval-tracks", type=_track_count, default=1, help="tracks of the timed evaluation (default 1)")
    bt.add_argument("--eval-max-steps", type=_at_least(1), default=200, help="steps per timed evaluation episode")
    bt.add_argument("--sb3-vec", choices=SB3_VEC, default="subproc",
                    help="how stock SB3 steps its environments (default: SubprocVecEnv)")
    bt.add_argument("--seed", type=int, default=0)
    bt.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the networks run (default cpu)")
    bt.set_defaults(func=_bench_train)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="relreps", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_anchors, _add_train, _add_grid, _add_export, _add_evaluate, _add_select, _add_table, _add_zoo,
                _add_latent, _add_bench):
        add(sub)
    return p

def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as e:  # bad input (or a file system refusal): one line, no traceback
        message = " ".join(line.strip() for line in str(e).splitlines()) or type(e).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
