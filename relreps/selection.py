"""Choosing one of a run's checkpoints by its score on validation tracks.

A run's last checkpoint is not always its best: a relative agent's held-out score can rise to a
peak mid-run and fall before the end (the book's lab notes). Picking the peak by the held-out scores
themselves would report a lucky draw as the agent's score; :func:`select` picks it on
:data:`relreps.evaluation.VALIDATION_TRACKS` instead, tracks that no reported number uses, so the
chosen agent's held-out score (``relreps evaluate``) stays an honest estimate.

    relreps select RUN --out RUN/selection.json      # the run's kept agents (relreps train --keep-agents)
    relreps select A.json B.json C.json              # or any agent files of one colour

Given a run folder, each kept agent's validation episodes are stored beside it
(``RUN/agents/STEPS.validation.json``, with the weights' checksum), so that a choice that was
interrupted, or is repeated on more tracks, plays only the episodes it lacks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from . import evaluation

__all__ = ["Candidate", "Selection", "select", "validation_file"]


@dataclass
class Candidate:
    """One agent file and its validation score."""

    path: str
    name: str
    steps: int | None  #: training steps of the agent (its card's ``training.steps``), if known
    sha256: str  #: the checksum of its weights (its card's), which identifies it wherever it moves
    mean_max_return: float
    std_max_return: float
    laps_finished: int


@dataclass
class Selection:
    """The candidates in the order given, and the chosen one (the highest mean validation score;
    the earliest candidate on a tie)."""

    color: str
    tracks: list[int]
    candidates: list[Candidate]
    best: int  #: index into ``candidates``

    @property
    def chosen(self) -> Candidate:
        return self.candidates[self.best]

    @property
    def standard_error(self) -> float:
        """The standard error of a candidate's mean score: the candidates' spread between tracks,
        pooled (their sample variances averaged), over the square root of the number of tracks; NaN
        with one track. The best of many such noisy means sits above the chosen agent's level, which
        only its held-out score measures."""
        n = len(self.tracks)
        if n < 2:
            return float("nan")
        variance = sum(c.std_max_return ** 2 for c in self.candidates) / len(self.candidates) * n / (n - 1)
        return (variance / n) ** 0.5

    def runners_up(self) -> list[Candidate]:
        """The other candidates within one :attr:`standard_error` of the chosen one's score (none with
        one track)."""
        top = self.chosen.mean_max_return
        return [c for i, c in enumerate(self.candidates)
                if i != self.best and top - c.mean_max_return <= self.standard_error]

    def summary(self) -> dict:
        return {"color": self.color, "track_set": "validation", "tracks": self.tracks,
                "standard_error": self.standard_error, "runners_up": [c.name for c in self.runners_up()],
                "chosen": asdict(self.chosen), "candidates": [asdict(c) for c in self.candidates]}


def validation_file(card_path: str | os.PathLike) -> Path:
    """Where :func:`select` keeps a kept agent's validation episodes: ``RUN/agents/STEPS.validation.json``."""
    card_path = Path(card_path)
    return card_path.with_name(f"{card_path.stem}.validation.json")


def _stored_episodes(card_path: Path, sha256: str, max_steps: int, color: str) -> dict[int, evaluation.Episode]:
    """The validation episodes stored for these weights, episode length and colour (none if the file
    is missing, unreadable, of other weights, as when a resumed run replaced the agent, or written by
    another version of relreps)."""
    from . import __version__

    try:
        record = json.loads(validation_file(card_path).read_text())
        if (record.get("sha256"), record.get("max_steps"), record.get("color")) != (sha256, max_steps, color) \
                or record.get("relreps", __version__) != __version__:
            return {}
        return {int(e["track_seed"]): evaluation.Episode(**e) for e in record["episodes"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _store_episodes(card_path: Path, sha256: str, max_steps: int, color: str,
                    episodes: dict[int, evaluation.Episode]) -> None:
    from . import __version__, files

    record = {"sha256": sha256, "max_steps": max_steps, "color": color, "track_set": "validation",
              "relreps": __version__,
              "episodes": [asdict(episodes[s]) for s in sorted(episodes)]}
    files.write_text(validation_file(card_path), json.dumps(record, indent=1) + "\n")


def select(agents: Sequence[str | os.PathLike], *, tracks: int = 10, processes: int | None = None,
           max_steps: int = 1000, progress=None) -> Selection:
    """Score each agent (card path or zoo name) on the first ``tracks`` validation tracks, in its
    own colour, and choose the best.

    Args:
        agents: two or more candidates of one colour (typically one run's checkpoints); a run folder
            stands for its kept agents (:func:`relreps.zoo.kept_agents`), in order of steps.
        tracks: how many validation tracks (1-10).
        processes: evaluation worker processes (default: one per core).
        max_steps: episode length limit.
        progress: called with each :class:`Candidate` as it is scored (e.g. ``print``).

    Raises:
        ValueError: fewer than two candidates, one named twice, candidates of different colours,
            or a bad track count, all before any episode is played.
        relreps.zoo.ZooError: a candidate that is not an agent card (e.g. an evaluation file), or a
            run folder without kept agents, also before any episode is played.
    """
    from . import zoo

    track_seeds = evaluation.tracks_of("validation", tracks)
    expanded: list[str | os.PathLike] = []
    kept: set[Path] = set()  # candidates that are a run's kept agents: their episodes are stored
    for a in agents:
        folder = Path(a)
        if folder.is_dir() and folder.name == zoo.AGENTS_DIR and not (folder / zoo.AGENTS_DIR).is_dir():
            folder = folder.parent  # RUN/agents stands for RUN
        if folder.is_dir() and (zoo.kept_agents(folder) or str(a) not in zoo.available()):
            in_run = zoo.kept_agents(folder)
            if not in_run:
                raise zoo.ZooError(f"{a} has no kept agents ({folder / zoo.AGENTS_DIR}/STEPS.json): train it "
                                   f"with `relreps train --keep-agents`, or give agent files")
            expanded.extend(in_run)
            kept.update(p.resolve() for p in in_run)
        else:
            expanded.append(a)
    agents = expanded
    if len(agents) < 2:
        raise ValueError(f"give at least two agents to choose from, got {len(agents)}")
    paths = [zoo._resolve(a).resolve() for a in agents]  # an unknown name or path: ZooError, naming the choices
    twice = sorted({str(p) for p in paths if paths.count(p) > 1})
    if twice:
        raise ValueError(f"an agent is named twice among the candidates: {', '.join(twice)} (a run folder "
                         f"already stands for all its kept agents)")
    cards = [zoo.card(p) for p in paths]  # the cards only: agents load one at a time below
    for p, c in zip(paths, cards):
        try:
            zoo.check_card(c, p)
        except zoo.ZooError as e:
            not_a_card = "format" not in c or any(part in p.name for part in (".eval-", ".validation."))
            hint = (" (not an agent card: a run's evaluations sit beside its kept agents; give the run folder, "
                    "`relreps select RUN`)") if not_a_card else ""
            raise zoo.ZooError(f"{e}{hint}") from None
        weights = p.parent / c["weights"]
        if not weights.is_file():
            raise zoo.ZooError(f"agent {c['name']!r} ({p}): missing weights file {weights}")
    colors = sorted({c["color"] for c in cards})
    if len(colors) != 1:
        raise ValueError(f"the candidates drive different colours ({', '.join(colors)}): choose among one "
                         f"run's checkpoints, of one colour")
    candidates: list[Candidate] = []
    for path, resolved in zip(agents, paths):
        agent = zoo.load(path)
        sha = agent.card["sha256"]
        played = _stored_episodes(resolved, sha, max_steps, agent.color) if resolved in kept else {}
        missing = [s for s in track_seeds if s not in played]
        if missing:
            new = evaluation.evaluate(agent, color=agent.color, track_seeds=missing, processes=processes,
                                      max_steps=max_steps)
            played.update({e.track_seed: e for e in new.episodes})
            if resolved in kept:
                _store_episodes(resolved, sha, max_steps, agent.color, played)
        result = evaluation.Evaluation(agent.color, [played[s] for s in track_seeds])
        steps = (agent.card.get("training") or {}).get("steps")
        candidate = Candidate(str(path), agent.name, int(steps) if steps is not None else None,
                              sha, result.mean_max_return, result.std_max_return, result.laps)
        candidates.append(candidate)
        if progress is not None:
            progress(candidate)
    scores = [c.mean_max_return for c in candidates]
    return Selection(colors[0], list(track_seeds), candidates, scores.index(max(scores)))
