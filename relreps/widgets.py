"""The stitch explorer: choose any encoder and any policy, watch the stitched agent drive.

:func:`explorer` returns an ipywidgets widget (:class:`StitchExplorer`): dropdowns for the encoder
agent and the policy agent, the representation (relative or absolute; only agents of that
representation are offered, so a relative encoder never meets an absolute head), an **align**
choice (the paper's stitch, or :func:`relreps.stitching.stitch`'s ``"anchor-mean"`` and
``"affine"`` corrections), the track and the number of steps, and a **Drive** button. The stitched agent drives one greedy episode on its
encoder's colour (:func:`relreps.evaluation.record_episode`); the run is played back frame by frame
(a Play button and a slider) next to its running return, with the scores (maximum and final return).

Widgets need a running kernel (Jupyter, or Colab, where :func:`enable_colab_widgets` turns on the
custom widget manager that ipywidgets 8 needs): a static page shows the widget's saved state only.
For static pages, :func:`drive_gif` turns a recorded drive into a small animated GIF and
:func:`show_gif` displays it inline.

Everything the button does is a method (:meth:`StitchExplorer.run`), so it is testable without a
browser.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence

import ipywidgets as W
import numpy as np

from . import envs, plots, stitching, zoo
from .evaluation import EVAL_TRACKS, Drive, record_episode
from .notebook import on_colab

__all__ = [
    "StitchExplorer",
    "catalog",
    "choose_stitch",
    "drive_gif",
    "enable_colab_widgets",
    "explorer",
    "frame_png",
    "make_agent",
    "show_gif",
]

#: A recorded drive is shown at 50 steps per second of game time (CarRacing's FPS).
GAME_FPS = 50
#: What :func:`drive_gif` keeps a GIF under, by default (bytes).
GIF_MAX_BYTES = 1_000_000


# --------------------------------------------------------------------------------------------
# Agents: names or loaded agents, their cards, the pair a page should show
# --------------------------------------------------------------------------------------------


def _card(agent) -> zoo.Card:
    """The card of an agent or of a zoo name / card path, without loading the weights."""
    return agent.card if isinstance(agent, zoo.Agent) else zoo.card(agent)


def _entries(agents) -> dict[str, dict]:
    """``name -> {"agent": Agent | None, "source", "card", "representation", "color"}`` for the explorer's
    choices, ordered by colour (the paper's order: green, red, blue, yellow; others last), then name."""
    if agents is None:
        agents = zoo.available()
    items = agents.items() if isinstance(agents, Mapping) else (
        (a.name if isinstance(a, zoo.Agent) else str(a), a) for a in agents)
    out = {}
    for name, agent in items:
        card = _card(agent)
        out[str(name)] = {"agent": agent if isinstance(agent, zoo.Agent) else None,
                          "source": agent, "card": card, "representation": card["representation"],
                          "color": envs.color_name(card["color"])}
    return dict(sorted(out.items(), key=lambda kv: (zoo.color_rank(kv[1]["color"]), kv[0])))


def catalog(agents=None) -> list[dict]:
    """Name, algorithm, representation and colour of each agent (zoo names or agents; default: the
    zoo), read from the cards without loading weights, in the explorer's order."""
    out = []
    for name, entry in _entries(agents).items():
        card = entry["card"]
        out.append({"name": name, "algo": card["algo"], "representation": entry["representation"],
                    "color": entry["color"], "training steps": card.get("training", {}).get("steps")})
    return out


def choose_stitch(agents=None) -> tuple[str, str] | None:
    """The (encoder, policy) pair a page should show, from zoo names or agents (default: the zoo).

    In order of preference: a relative encoder and a relative policy trained on different colours
    (the paper's zero-shot stitch), a relative agent with itself, any agent with itself. Colours
    are taken in the paper's order (green, red, blue, yellow), then names. ``None`` when there are
    no agents.
    """
    entries = _entries(agents)
    names = list(entries)
    relative = [n for n in names if entries[n]["representation"] == "relative"]
    for enc in relative:
        for pol in relative:
            if entries[enc]["color"] != entries[pol]["color"]:
                return enc, pol
    for n in relative + names:
        return n, n
    return None


#: The align control's value for the paper's stitch (``stitch(..., align=None)``).
NO_ALIGN = "none"


def _align_options(mode: str) -> list[tuple[str, str]]:
    """The align control's ``(label, value)`` choices in ``mode``: the anchor-mean shift needs anchors."""
    options = [("none (the paper's stitch)", NO_ALIGN)]
    if mode == "relative":
        options.append(("anchor means (not in the paper)", "anchor-mean"))
    return options + [("affine map on the anchors (not in the paper)", "affine")]


def make_agent(encoder, policy, mode: str | None = None, *, align: str | None = None) -> zoo.Agent:
    """``encoder``'s encoder joined to ``policy``'s head (:func:`relreps.stitching.stitch`, with
    ``align``), or the agent itself when both are the same agent. Accepts agents or zoo names.

    Raises:
        ValueError: the pair cannot be joined (the message of :func:`~relreps.stitching.stitch`).
    """
    enc = encoder if isinstance(encoder, zoo.Agent) else zoo.load(encoder)
    pol = policy if isinstance(policy, zoo.Agent) else zoo.load(policy)
    same = enc is pol or (isinstance(encoder, str) and encoder == policy)  # one agent with itself
    # validates the pair, mode and align, even for one agent (whose affine map would be thrown away:
    # not fitted, as any agent admits one)
    stitched = stitching.stitch(enc, pol, mode, align=None if same and align == "affine" else align)
    return enc if same else stitched


# --------------------------------------------------------------------------------------------
# Images: frames, the return curve, GIFs
# --------------------------------------------------------------------------------------------


def _png(image: np.ndarray) -> bytes:
    return plots.png_bytes(image, level=1)  # fast: frames are encoded while playing back


def frame_png(frame: np.ndarray, scale: int = 3) -> bytes:
    """A frame as PNG bytes, enlarged ``scale`` times by repeating pixels (crisp, not blurred)."""
    frame = np.asarray(frame, dtype=np.uint8)
    if scale > 1:
        frame = frame.repeat(scale, axis=0).repeat(scale, axis=1)
    return _png(frame)


class _Curve:
    """The running return of a drive, drawn once (matplotlib, off-screen); :meth:`png` adds a
    cursor at a step by painting pixels, so playing back costs no redrawing."""

    def __init__(self, drive: Drive, size: tuple[float, float] = (4.6, 2.6), dpi: int = 100):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=size, dpi=dpi)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        returns = np.asarray(drive.returns)
        steps = np.arange(1, len(returns) + 1)
        ax.plot(steps, returns, color="#2a9d8f", lw=1.5)
        best = int(np.argmax(returns))
        ax.plot(steps[best], returns[best], "o", color="#e76f51", ms=5)
        right = best > 0.8 * len(returns)
        ax.annotate(f"max {returns[best]:.0f}", (steps[best], returns[best]), textcoords="offset points",
                    xytext=(-4 if right else 0, 6), ha="right" if right else "center", fontsize=8,
                    color="#e76f51")
        ax.axhline(0, color="#bbbbbb", lw=0.8)
        ax.set_xlim(0, max(len(returns), 1))
        low, high = min(0.0, float(returns.min())), max(1.0, float(returns.max()))
        ax.set_ylim(low - 0.05 * (high - low), high + 0.15 * (high - low))
        ax.set_xlabel("step", fontsize=9)
        ax.set_ylabel("running return", fontsize=9)
        ax.tick_params(labelsize=8)
        fig.tight_layout()
        canvas.draw()
        self.image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
        height = self.image.shape[0]
        (x0, y0), (x1, y1) = ax.transData.transform([(0, ax.get_ylim()[0]), (1, ax.get_ylim()[1])])
        self._x0, self._dx = x0, x1 - x0  # pixels per step
        self._rows = slice(int(round(height - y1)), int(round(height - y0)))  # the axes, in image rows

    def png(self, step: int | None = None) -> bytes:
        """The curve as PNG bytes, with a vertical cursor at ``step`` (none when ``None``)."""
        if step is None:
            return _png(self.image)
        img = self.image.copy()
        x = int(round(self._x0 + self._dx * step))
        img[self._rows, max(0, x - 1) : x + 1] = (231, 111, 81)
        return _png(img)


def drive_gif(
    drive: Drive,
    *,
    max_frames: int = 100,
    scale: int = 2,
    speed: float = 2.0,
    max_bytes: int = GIF_MAX_BYTES,
) -> bytes:
    """A recorded drive as an animated GIF (bytes), small enough for a static page.

    Keeps every ``k``-th frame (the last one too) so that at most ``max_frames`` remain, enlarges
    them ``scale`` times, and plays them at ``speed`` times game speed (50 steps per second), looping.
    One shared 256-colour palette, no dithering: CarRacing's flat colours stay flat. When the GIF
    would exceed ``max_bytes``, fewer frames are kept.

    Raises:
        ValueError: ``max_bytes`` cannot be met even with two frames.
    """
    from PIL import Image

    n = len(drive.frames)
    if max_frames < 2 or scale < 1 or speed <= 0:
        raise ValueError("need max_frames >= 2, scale >= 1 and speed > 0")
    keep = max_frames
    while keep >= 2:
        stride = max(1, math.ceil((n - 1) / (keep - 1))) if n > 1 else 1
        idx = list(range(0, n, stride))
        if idx[-1] != n - 1:
            idx.append(n - 1)
        frames = [np.asarray(drive.frames[i], dtype=np.uint8).repeat(scale, 0).repeat(scale, 1) for i in idx]
        # one palette for all frames, from a few frames spread over the drive
        sample = np.concatenate(frames[:: max(1, len(frames) // 8)], axis=0)
        palette = Image.fromarray(sample).quantize(256, method=Image.Quantize.MEDIANCUT)
        images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
        buf = io.BytesIO()
        duration = max(20, int(round(1000 * stride / GAME_FPS / speed)))
        images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=duration,
                       loop=0, optimize=False, disposal=1)
        data = buf.getvalue()
        if len(data) <= max_bytes:
            return data
        keep = min(keep - 1, int(keep * max_bytes / len(data) * 0.95))
    raise ValueError(f"cannot make a GIF of this drive under {max_bytes} bytes")


def show_gif(drive: Drive, *, width: int | None = None, **kwargs):
    """Display :func:`drive_gif` of ``drive`` inline (returns an ``IPython.display.Image``; a
    chapter's last expression shows it, and a static page keeps it)."""
    from IPython.display import Image

    data = drive_gif(drive, **kwargs)
    return Image(data=data, format="gif", width=width)


# --------------------------------------------------------------------------------------------
# The explorer
# --------------------------------------------------------------------------------------------


def enable_colab_widgets() -> bool:
    """On Colab, turn on the custom widget manager that ipywidgets 8 needs; ``True`` if done."""
    if not on_colab():
        return False
    from google.colab import output

    output.enable_custom_widget_manager()
    return True


class StitchExplorer(W.VBox):
    """Choose an encoder, a policy, a mode, a track and a length; drive; play the run back.

    Build it with :func:`explorer`. ``run()`` is what the Drive button does; ``show(drive)``
    displays a drive recorded elsewhere. After a run, :attr:`drive` holds the recorded
    :class:`~relreps.evaluation.Drive` and :attr:`error` the message of a refused choice (or
    ``None``).
    """

    def __init__(self, agents=None, *, track_seeds: Sequence[int] = EVAL_TRACKS,
                 max_steps: int = envs.MAX_EPISODE_STEPS, scale: int = 3):
        self._entries = _entries(agents)
        self.scale = scale
        self.drive: Drive | None = None
        self.error: str | None = None
        self._curve: _Curve | None = None
        reps = [m for m in stitching.REPRESENTATIONS if any(e["representation"] == m for e in self._entries.values())]
        style = {"description_width": "70px"}
        reps = reps or list(stitching.REPRESENTATIONS)
        self.mode = W.ToggleButtons(options=reps, description="mode", style=style,
                                    tooltips=["both agents use this representation"] * len(reps))
        self.align = W.Dropdown(options=_align_options("relative"), value=NO_ALIGN, description="align",
                                style=style, tooltip="stitch(..., align=...), book chapter 5: "
                                "the paper's stitch, or one of our two zero-shot corrections")
        self.encoder = W.Dropdown(description="encoder", style=style)
        self.policy = W.Dropdown(description="policy", style=style)
        self.track = W.Dropdown(options=[int(s) for s in track_seeds], description="track", style=style)
        self.steps = W.IntSlider(value=min(max_steps, envs.MAX_EPISODE_STEPS), min=10,
                                 max=envs.MAX_EPISODE_STEPS, step=10, description="steps", style=style)
        self.button = W.Button(description="Drive", button_style="primary", icon="play",
                               tooltip="drive one greedy episode with the stitched agent")
        self.status = W.HTML()
        self.frame = W.Image(format="png", width=96 * scale, height=96 * scale)
        self.play = W.Play(min=0, max=0, step=2, interval=40, description="play", show_repeat=False)
        self.slider = W.IntSlider(min=0, max=0, description="step", style={"description_width": "40px"},
                                  layout=W.Layout(width="360px"))
        W.jslink((self.play, "value"), (self.slider, "value"))
        self.step_info = W.HTML()
        self.curve = W.Image(format="png")
        self.score = W.HTML()

        self.mode.observe(self._on_mode, names="value")
        self.encoder.observe(self._on_encoder, names="value")
        self.slider.observe(self._on_step, names="value")
        self.button.on_click(self._on_click)
        self._on_mode()

        controls = W.VBox([W.HBox([self.mode, self.align]), W.HBox([self.encoder, self.policy]),
                           W.HBox([self.track, self.steps]), W.HBox([self.button, self.status])])
        player = W.VBox([self.frame, W.HBox([self.play, self.slider]), self.step_info])
        wrap = W.Layout(flex_flow="row wrap")  # the curve goes below the frame in a narrow column
        super().__init__([controls, W.HBox([player, W.VBox([self.curve, self.score])], layout=wrap)])

    # -- choices -----------------------------------------------------------------------------
    def _label(self, name: str) -> tuple[str, str]:
        color = self._entries[name]["color"]
        return (name if color in name else f"{name} ({color})"), name

    def _on_mode(self, change=None) -> None:
        names = [n for n, e in self._entries.items() if e["representation"] == self.mode.value]
        options = [self._label(n) for n in names]
        keep_enc, keep_pol = self.encoder.value, self.policy.value
        self.encoder.options, self.policy.options = options, options
        if names:
            self.encoder.value = keep_enc if keep_enc in names else names[0]
            if keep_pol in names:
                self.policy.value = keep_pol
            else:  # by default a policy of another colour: a stitch across colours
                color = self._entries[self.encoder.value]["color"]
                other = [n for n in names if self._entries[n]["color"] != color]
                self.policy.value = (other or names)[0]
        self.button.disabled = not names
        keep = self.align.value  # absolute encoders have no anchors: no anchor-mean choice
        self.align.options = _align_options(self.mode.value)
        self.align.value = keep if keep in dict(self.align.options).values() else NO_ALIGN
        if not self._entries:
            self._say(f"No agents to choose from: the zoo ({html.escape(str(zoo.zoo_dir()))}) is empty. "
                      "Train agents (chapter 4) or install a version of the book that ships them.", error=True)
        elif not names:
            self._say(f"No {self.mode.value} agents.", error=True)
        else:
            self._say("")

    def _on_encoder(self, change=None) -> None:
        enc = self.encoder.value
        if enc is not None:
            self.button.tooltip = f"drive on {self._entries[enc]['color']} (the encoder's colour)"

    def select(self, encoder: str | None = None, policy: str | None = None, mode: str | None = None,
               track_seed: int | None = None, max_steps: int | None = None, align: str | None = None) -> None:
        """Set the controls (names must be among the choices the mode offers; ``align``: ``"none"``
        (the paper's stitch), ``"anchor-mean"`` (relative mode only) or ``"affine"``)."""
        if mode is not None:
            self.mode.value = mode
        if align is not None:
            choices = dict(self.align.options).values()
            if align not in choices:
                why = " (absolute encoders have no anchors)" if align == "anchor-mean" else ""
                raise ValueError(f"align {align!r} is not a choice in {self.mode.value} mode: expected one of "
                                 f"{', '.join(repr(c) for c in choices)}{why}")
            self.align.value = align
        if encoder is not None:
            self.encoder.value = encoder
        if policy is not None:
            self.policy.value = policy
        if track_seed is not None:
            if track_seed not in self.track.options:
                self.track.options = [*self.track.options, int(track_seed)]
            self.track.value = int(track_seed)
        if max_steps is not None:
            self.steps.value = max_steps

    # -- driving -----------------------------------------------------------------------------
    def _agent(self, name: str) -> zoo.Agent:
        entry = self._entries[name]
        if entry["agent"] is None:  # load a zoo agent once, when first driven
            entry["agent"] = zoo.load(entry["source"])
        return entry["agent"]

    def _say(self, text: str, error: bool = False) -> None:
        color = "#b00020" if error else "#444444"
        self.status.value = f'<span style="color:{color}">{text}</span>' if text else ""

    def _on_click(self, _button=None) -> None:
        self.run()

    def run(self, encoder: str | None = None, policy: str | None = None, mode: str | None = None,
            track_seed: int | None = None, max_steps: int | None = None, align: str | None = None) -> Drive | None:
        """Drive one greedy episode with the chosen pair and show it (what the Drive button does).

        Arguments override the controls; names need not be among the choices the mode offers (a
        pair that cannot be joined is reported, as the button would; with names and no ``mode``,
        the agents' own representation is the mode; ``align`` overrides the control: ``"none"``,
        ``"anchor-mean"`` or ``"affine"``). Returns the
        recorded drive, or ``None`` with the reason in :attr:`error` and in the status line.
        """
        align = self.align.value if align is None else align
        if mode is None and encoder is None and policy is None:
            mode = self.mode.value
        encoder = encoder if encoder is not None else self.encoder.value
        policy = policy if policy is not None else self.policy.value
        track_seed = int(track_seed if track_seed is not None else self.track.value)
        max_steps = int(max_steps if max_steps is not None else self.steps.value)
        self.error = None
        try:
            if encoder is None or policy is None:
                raise ValueError("choose an encoder and a policy first")
            for name in (encoder, policy):
                if name not in self._entries:
                    raise ValueError(f"unknown agent {name!r}: choose from {', '.join(self._entries) or 'none'}")
            agent = make_agent(self._agent(encoder), self._agent(policy), mode,
                               align=None if align == NO_ALIGN else align)
        except ValueError as e:  # stitching's (and the zoo's) clear messages
            self.error = str(e)
            self._say(html.escape(self.error), error=True)
            return None
        color = self._entries[encoder]["color"]
        self.button.disabled = True
        self._say(f"driving {max_steps} steps on {color} (track {track_seed})...")
        try:
            drive = record_episode(agent, color, track_seed, max_steps)
        finally:
            self.button.disabled = False
        self.show(drive)
        return drive

    def show(self, drive: Drive, **selection) -> None:
        """Display a recorded drive (``selection``: as :meth:`select`, to match the controls)."""
        if selection:
            self.select(**selection)
        self.drive = drive
        self._curve = _Curve(drive)
        last = len(drive.frames) - 1
        self.play.value = 0
        self.slider.max = self.play.max = last
        self.play.step = max(1, last // 250)  # about 250 frames a run, whatever its length
        self.slider.value = 0
        self._on_step()
        best = int(np.argmax(drive.returns)) + 1
        lap = "yes" if drive.episode.lap_finished else "no"
        self.score.value = (
            f"<b>{html.escape(drive.agent)}</b> on {html.escape(drive.color)}, track {drive.track_seed}<br>"
            f"max return <b>{drive.max_return:.1f}</b> (step {best}), final return {drive.final_return:.1f}, "
            f"{drive.length} steps, lap finished: {lap}")
        self._say(f"done: max return {drive.max_return:.1f}")

    def _on_step(self, change=None) -> None:
        if self.drive is None:
            return
        i = int(self.slider.value)
        self.frame.value = frame_png(self.drive.frames[i], self.scale)
        if self._curve is not None:
            self.curve.value = self._curve.png(i)
        if i == 0:
            self.step_info.value = "step 0: start"
        else:
            action = envs.ACTIONS[int(self.drive.actions[i - 1])]
            self.step_info.value = (f"step {i}: {action}, reward {self.drive.rewards[i - 1]:+.1f}, "
                                    f"return {self.drive.returns[i - 1]:.1f}")


def explorer(agents=None, **kwargs) -> StitchExplorer:
    """The stitch explorer widget (display it as a cell's last expression).

    Args:
        agents: zoo names, card paths or loaded :class:`~relreps.zoo.Agent` objects (a list, or a
            mapping ``name -> agent``); default: every agent in the zoo (:func:`relreps.zoo.available`).
        kwargs: ``track_seeds`` (the tracks offered; default the held-out
            :data:`~relreps.evaluation.EVAL_TRACKS`), ``max_steps`` (the initial length), ``scale``
            (frame magnification).

    On Colab, turns on the custom widget manager first (:func:`enable_colab_widgets`).
    """
    enable_colab_widgets()
    return StitchExplorer(agents, **kwargs)
