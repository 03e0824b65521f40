"""The static stitch explorer (relreps.showcase): which pairs, the kept frames and their sprite
sheet, the road under the car, verdicts, the representative stitch, the saved-table check, the
assets and the HTML fragment; recording with the shipped zoo's agents (slow); and the fragment in
a headless Chromium at desktop and phone widths (slow; skipped without chromium and playwright:
``apt-get install chromium`` and ``pip install playwright``; Playwright's own browser download is
not needed)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from browser import CHROMIUM, chromium, serve
from PIL import Image

from relreps import envs, evaluation, showcase, stitching, zoo
from relreps.evaluation import Episode
from relreps.showcase import Pair, Recording

TRACK = evaluation.EVAL_TRACKS[0]


# --------------------------------------------------------------------------------------------
# Synthetic recordings (no driving)
# --------------------------------------------------------------------------------------------


def fake(enc: str, pol: str, rewards, *, rep: str = "relative", align: str = "none", road=None, lap: bool = False,
         stride: int = 4) -> Recording:
    rewards = np.asarray(rewards, dtype=np.float64)
    returns = np.cumsum(rewards)
    n = len(rewards)
    pair = Pair(zoo.agent_name("ppo", rep, enc), zoo.agent_name("ppo", rep, pol), align)
    return Recording(
        pair=pair, representation=rep, encoder_color=enc, policy_color=pol,
        agent=pair.encoder if pair.alone else f"{pair.encoder}+{pair.policy}", track_seed=TRACK, max_steps=1000,
        stride=stride, episode=Episode(TRACK, float(returns.max()), float(returns[-1]), n, lap),
        actions=np.full(n, envs.GAS), rewards=rewards, returns=returns,
        road=np.ones(n + 1, bool) if road is None else np.asarray(road, bool),
        sprite=repr(pair.drive_key).encode(), columns=math.ceil(math.sqrt(len(showcase.kept_steps(n, stride)))))


TILE = 1000 / 250  # one tile of a 250-tile track


def tiles_then_grass(tiles: int, steps: int) -> list[float]:
    """A tile every step for ``tiles`` steps, then nothing (-0.1 a step) until ``steps``."""
    return [TILE - 0.1] * tiles + [-0.1] * (steps - tiles)


# --------------------------------------------------------------------------------------------
# Pairs, kept frames, sprite sheets, the road
# --------------------------------------------------------------------------------------------


def test_pair_align_and_drive_key():
    with pytest.raises(ValueError, match="unknown align 'anchor'"):
        Pair("a", "b", "anchor")
    assert Pair("a", "a", "affine").drive_key == Pair("a", "a").drive_key == ("a", "a", "none")
    assert Pair("a", "b", "affine").drive_key != Pair("a", "b").drive_key
    assert Pair("a", "a").alone and not Pair("a", "b").alone


def test_zoo_names_and_all_pairs_never_mix_representations():
    names = showcase.zoo_names(names=[*zoo.available(), "ppo-rel-green-s2", "dqn-rel-red"])
    assert names == [f"ppo-{r}-{c}" for r in ("rel", "abs") for c in envs.COLORS]  # seed 1 only, paper's order
    pairs = showcase.all_pairs(names)
    assert len(pairs) == 64 and len(set(pairs)) == 64
    assert len({p.drive_key for p in pairs}) == 56  # an agent alone is one drive in both alignments
    for p in pairs:
        assert p.encoder[:7] == p.policy[:7]  # ppo-rel- with ppo-rel-, ppo-abs- with ppo-abs-
    assert showcase.all_pairs(names[:2], aligns=["none"]) == [
        Pair("ppo-rel-green", "ppo-rel-green"), Pair("ppo-rel-green", "ppo-rel-red"),
        Pair("ppo-rel-red", "ppo-rel-green"), Pair("ppo-rel-red", "ppo-rel-red")]
    with pytest.raises(ValueError, match="unknown align"):
        showcase.all_pairs(names, aligns=["anchor-mean"])


@pytest.mark.parametrize(("length", "stride", "steps"), [
    (10, 4, [0, 4, 8, 10]), (8, 4, [0, 4, 8]), (0, 4, [0]), (3, 1, [0, 1, 2, 3]), (5, 10, [0, 5])])
def test_kept_steps_start_at_zero_and_end_at_the_last_frame(length, stride, steps):
    assert showcase.kept_steps(length, stride) == steps


def test_kept_steps_refuses_bad_arguments():
    with pytest.raises(ValueError):
        showcase.kept_steps(10, 0)
    with pytest.raises(ValueError):
        showcase.kept_steps(-1, 4)


def test_sprite_sheet_tiles_row_by_row():
    frames = np.stack([np.full((3, 2, 3), i + 1, np.uint8) for i in range(5)])
    sheet = showcase.sprite_sheet(frames)  # 5 frames: 3 columns, 2 rows
    assert sheet.shape == (6, 6, 3)
    for i in range(5):
        r, c = divmod(i, 3)
        assert (sheet[3 * r : 3 * r + 3, 2 * c : 2 * c + 2] == i + 1).all()
    assert (sheet[3:, 4:] == 0).all()  # the unused tile is black
    assert showcase.sprite_sheet(frames, columns=5).shape == (3, 10, 3)
    with pytest.raises(ValueError, match="expected frames"):
        showcase.sprite_sheet(frames[0])


def test_sprite_sheet_encodes_as_webp_close_to_the_frames():
    rng = np.random.default_rng(0)
    frames = np.repeat(np.repeat(rng.integers(0, 255, (4, 12, 12, 3), dtype=np.uint8), 8, 1), 8, 2)  # flat blocks
    data = showcase.encode_webp(showcase.sprite_sheet(frames), quality=90)
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)
    assert back.shape == (192, 192, 3)
    assert np.abs(back - showcase.sprite_sheet(frames)).mean() < 12


def _frame(background, window=None):
    f = np.zeros((96, 96, 3), np.uint8)
    f[:] = background
    if window is not None:
        f[showcase.ROAD_WINDOW] = window
    return f


def test_road_under_car():
    green = envs.COLORS["green"][0]
    road = envs.ROAD_COLOR
    on = _frame(green, road)
    off = _frame(green)
    only_car = off.copy()
    only_car[showcase.CAR_ROWS, showcase.CAR_COLS] = road  # grey where the car is: not the road
    shaded = _frame(green, (105, 105, 105))  # the road's tiles are shaded a little
    kerb = _frame(green, (255, 0, 0))
    got = showcase.road_under_car(np.stack([on, off, only_car, shaded, kerb]))
    assert got.tolist() == [True, False, False, True, False]


# --------------------------------------------------------------------------------------------
# Verdicts, the representative stitch, the saved tables
# --------------------------------------------------------------------------------------------


def test_verdict_compares_with_the_encoder_alone_and_says_why():
    alone = fake("green", "green", tiles_then_grass(200, 1000))
    good = fake("green", "red", tiles_then_grass(190, 1000))
    half = fake("green", "blue", tiles_then_grass(120, 1000))
    road = np.ones(1001, bool)
    road[200:] = False
    bad = fake("green", "yellow", tiles_then_grass(30, 1000), road=road)
    v = showcase.verdict(alone, alone)
    assert v["kind"] == "alone" and "alone" in v["text"]
    v = showcase.verdict(good, alone)
    assert v["kind"] == "drives" and v["ratio"] == pytest.approx(good.max_return / alone.max_return)
    assert f"{good.max_return:.1f}" in v["text"] and f"{alone.max_return:.1f}" in v["text"]
    assert showcase.verdict(half, alone)["kind"] == "partly"
    v = showcase.verdict(bad, alone)
    assert v["kind"] == "fails" and v["text"].startswith("Fails")
    assert "last new tile is at step 30" in v["text"] and "970 steps after" in v["text"]
    off_road = 1 - road[showcase.ZOOM_STEPS :].mean()  # after the last tile and the zoom: on the road until 199
    assert f"{bad.tiles_share:.0%}" in v["text"] and f"off the road in {off_road:.0%} of the frames" in v["text"]
    assert "100% of its actions are gas" in v["text"]
    assert showcase.verdict(bad, None)["kind"] == "unknown"


def test_verdict_names_the_playfield_and_a_drive_with_no_tile():
    alone = fake("red", "red", tiles_then_grass(200, 1000))
    off = fake("red", "blue", tiles_then_grass(10, 40) + [showcase.OFF_PLAYFIELD])
    assert off.off_playfield and off.length == 41
    assert off.tiles_share == pytest.approx(10 * TILE / 1000)
    assert "leaves the playfield at step 41" in showcase.verdict(off, alone)["text"]
    still = fake("red", "green", [-0.1] * 1000)
    assert still.last_tile_step == 0 and still.tiles_share == pytest.approx(0)
    assert "never reaches a new tile" in showcase.verdict(still, alone)["text"]


def _grid(scores: dict[tuple[str, str], int], rep="relative", align="none") -> list[Recording]:
    return [fake(e, p, tiles_then_grass(n, 1000), rep=rep, align=align) for (e, p), n in scores.items()]


def test_representative_is_the_median_stitch_and_lowest_the_worst():
    recs = _grid({("green", "green"): 250, ("green", "red"): 20, ("red", "green"): 100, ("red", "red"): 240,
                  ("blue", "green"): 160, ("blue", "red"): 200, ("green", "blue"): 150})
    recs += _grid({("green", "red"): 10}, rep="absolute")  # other representations do not count
    recs += _grid({("red", "green"): 5}, align="affine")
    stitches = sorted(r.max_return for r in recs[:7] if not r.pair.alone)
    typical = showcase.representative(recs)
    assert typical is not None and typical.pair == Pair("ppo-rel-green", "ppo-rel-blue")
    assert typical.max_return == float(np.median(stitches))  # an odd count: the median itself
    even = [r for r in recs if r.pair != Pair("ppo-rel-red", "ppo-rel-green")]  # 4 stitches: the lower middle one
    assert showcase.representative(even).pair == Pair("ppo-rel-green", "ppo-rel-blue")
    worst = showcase.lowest(recs)
    assert worst is not None and worst.pair == Pair("ppo-rel-green", "ppo-rel-red")
    assert showcase.lowest(recs, "absolute").representation == "absolute"
    assert showcase.representative(recs, align="affine").pair.align == "affine"
    assert showcase.representative([r for r in recs if r.pair.alone]) is None


def test_table_rows():
    recs = _grid({("green", "green"): 200, ("green", "red"): 50})
    rows = showcase.table_rows(recs)
    assert [r["verdict"] for r in rows] == ["alone", "fails"]
    assert rows[1]["ratio to encoder alone"] == pytest.approx(round(recs[1].max_return / recs[0].max_return, 2))


def test_compare_with_table():
    recs = _grid({("green", "green"): 200, ("green", "red"): 50})
    recs += _grid({("green", "red"): 60}, align="affine")

    def cell(value):
        return {"episodes": [{"track_seed": TRACK, "max_return": value}, {"track_seed": TRACK + 1, "max_return": 1.0}]}

    saved = {"encoders": {"green": "ppo-rel-green"}, "policies": {"green": "ppo-rel-green", "red": "ppo-rel-red"},
             "max_steps": 1000, "cells": {"green": {"green": cell(recs[0].max_return), "red": cell(1.0)}}}
    got = showcase.compare_with_table(recs, saved)
    assert [(c["pair"], c["match"]) for c in got] == [(recs[0].pair, True), (recs[1].pair, False)]
    assert got[1]["stored"] == 1.0 and got[1]["driven"] == recs[1].max_return
    assert showcase.compare_with_table(recs, {**saved, "max_steps": 500}) == []  # measured otherwise
    affine = showcase.compare_with_table(recs, {**saved, "align": "affine"})
    assert [c["pair"].align for c in affine] == ["affine"]  # the affine recording only (no alone one here)
    assert showcase.compare_with_table(recs, {**saved, "policies": {"green": "x", "red": "y"}}) == []


# --------------------------------------------------------------------------------------------
# Assets and the HTML fragment
# --------------------------------------------------------------------------------------------


def test_write_assets_replaces_the_folder(tmp_path):
    folder = tmp_path / "site" / "drives"
    folder.mkdir(parents=True)
    (folder / "old.webp").write_bytes(b"old")
    recs = _grid({("green", "green"): 200, ("green", "red"): 50})
    recs.append(fake("green", "green", tiles_then_grass(200, 1000), align="affine"))  # the same drive
    info = showcase.write_assets(recs, folder)
    names = sorted(p.name for p in folder.iterdir())
    assert info["files"] == 2 == len(names) and "old.webp" not in names
    assert info["bytes"] == sum(len(r.sprite) for r in recs[:2])
    assert all(re.fullmatch(r"ppo-rel-green--ppo-rel-(green|red)--none\.[0-9a-f]{10}\.webp", n) for n in names)
    assert sorted(p.name for p in folder.parent.iterdir()) == ["drives"]  # no temporary folder left
    assert oct(folder.stat().st_mode & 0o777) == oct(0o755)


def _data(fragment: str) -> dict:
    m = re.search(r'<script type="application/json">(.*?)</script>', fragment, re.S)
    assert m is not None
    return json.loads(m.group(1))


def test_component_html_carries_every_pair_and_no_external_resource():
    recs = _grid({("green", "green"): 200, ("green", "red"): 50, ("red", "red"): 220, ("red", "green"): 180})
    recs += _grid({("green", "green"): 200, ("green", "red"): 190}, align="affine")
    recs[1].agent = "</script><script>alert(1)</script>"  # whatever a name holds stays data
    fragment = showcase.component_html(recs, "../_static/x")
    assert fragment.count("<script") == 2 and fragment.count("</script>") == 2
    data = _data(fragment)
    assert set(data["pairs"]) == {"relative|none|green|green", "relative|none|green|red", "relative|none|red|red",
                                  "relative|none|red|green", "relative|affine|green|green",
                                  "relative|affine|green|red"}
    # two relative stitches with the paper's stitch: the lower of the two middle ones
    assert data["initial"] == "relative|none|green|red"
    pair = data["pairs"]["relative|none|green|red"]
    drive = data["drives"][pair["drive"]]
    assert drive["src"].startswith("../_static/x/") and drive["agent"] == recs[1].agent
    assert drive["max"] == round(recs[1].max_return, 1) and drive["length"] == 1000 and drive["n"] == 251
    assert len(drive["ret"]) == len(drive["act"]) == len(drive["road"]) == 251
    assert drive["ret"][-1] == round(10 * recs[1].final_return) and drive["act"][-1] == "-"
    assert pair["kind"] == "fails" and pair["own"] == data["pairs"]["relative|none|green|green"]["drive"]
    # the agent alone is one drive in both alignments
    assert data["pairs"]["relative|affine|green|green"]["drive"] == data["pairs"]["relative|none|green|green"]["drive"]
    assert [c["color"] for c in data["colors"]["relative"]] == ["green", "red"]
    # self-contained: no URL but the sprite sheets', no fixed width wider than a phone's column
    assert not re.search(r"(https?:)?//[a-z]", fragment.replace("http://www.w3.org/", ""))
    assert all(int(w) <= 320 for w in re.findall(r"width:\s*(\d+)px", fragment))
    uid = re.search(r'<div class="rrx" id="([\w-]+)">', fragment).group(1)
    assert f"#{uid} " in fragment and json.dumps(uid) in fragment  # the CSS and the script find this element


def test_component_html_inline_sheets_and_initial():
    recs = _grid({("green", "green"): 200, ("green", "red"): 50})
    data = _data(showcase.component_html(recs, None, initial=recs[0]))
    srcs = [d["src"] for d in data["drives"].values()]
    assert all(s.startswith("data:image/webp;base64,") for s in srcs)
    assert data["initial"] == "relative|none|green|green"
    with pytest.raises(ValueError, match="no recordings"):
        showcase.component_html([], "x/")


# --------------------------------------------------------------------------------------------
# Recording with the shipped agents (slow)
# --------------------------------------------------------------------------------------------

STEPS = 16
PAIRS = [Pair("ppo-rel-green", "ppo-rel-red"), Pair("ppo-rel-green", "ppo-rel-green"),
         Pair("ppo-rel-green", "ppo-rel-green", "affine"), Pair("ppo-rel-red", "ppo-rel-green", "affine"),
         Pair("ppo-rel-red", "ppo-rel-red")]


@pytest.fixture(scope="module")
def agents():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {n: zoo.load(n) for n in ("ppo-rel-green", "ppo-rel-red", "ppo-abs-red")}
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def recorded(agents):
    return showcase.record(PAIRS, agents, track_seed=TRACK, max_steps=STEPS, stride=3, processes=2)


@pytest.mark.slow
def test_record_keeps_the_drive_of_each_pair(agents, recorded):
    assert [r.pair for r in recorded] == PAIRS
    assert recorded[1].sprite is recorded[2].sprite  # the agent alone, driven once for both alignments
    for rec in recorded:
        enc, pol = agents[rec.pair.encoder], agents[rec.pair.policy]
        agent = enc if rec.pair.alone else stitching.stitch(enc, pol, align=None if rec.pair.align == "none"
                                                            else rec.pair.align)
        drive = evaluation.record_episode(agent, track_seed=TRACK, max_steps=STEPS)
        assert rec.episode == drive.episode and rec.encoder_color == enc.color and rec.policy_color == pol.color
        np.testing.assert_array_equal(rec.actions, drive.actions)
        np.testing.assert_array_equal(rec.returns, drive.returns)
        np.testing.assert_array_equal(rec.road, showcase.road_under_car(drive.frames))
        assert rec.steps == list(range(0, STEPS + 1, 3)) + [STEPS] and rec.max_steps == STEPS
        sheet = np.asarray(Image.open(io.BytesIO(rec.sprite)).convert("RGB"), dtype=np.int16)
        want = showcase.sprite_sheet(envs.preprocess(drive.frames[rec.steps]), rec.columns).astype(np.int16)
        assert rec.size == envs.OBS_SIZE  # the agent's view
        assert sheet.shape == want.shape and np.abs(sheet - want).mean() < 6  # lossy, but the same frames


@pytest.mark.slow
def test_record_refuses_a_pair_that_cannot_be_joined_before_driving(agents, monkeypatch):
    def no_drive(*args, **kwargs):
        raise AssertionError("drove before refusing")

    monkeypatch.setattr(showcase, "record_episode", no_drive)
    with pytest.raises(ValueError, match="cannot join a relative encoder"):
        showcase.record([Pair("ppo-rel-green", "ppo-rel-green"), Pair("ppo-rel-red", "ppo-abs-red")], agents,
                        max_steps=5)
    with pytest.raises(ValueError, match="max_steps"):
        showcase.record(PAIRS, agents, max_steps=0)


# --------------------------------------------------------------------------------------------
# In a browser (slow)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(recorded, tmp_path_factory):
    """The fragment of the recorded drives in a page of a small site (page in book/, sheets in
    _static/), served over HTTP on a free port."""
    root = tmp_path_factory.mktemp("site")
    showcase.write_assets(recorded, root / "_static" / "drives")
    page = root / "book" / "page.html"
    page.parent.mkdir()
    page.write_text('<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
                    '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
                    '<body style="margin:0 auto;max-width:780px;padding:0 12px"><h1>Explorer</h1>'
                    + showcase.component_html(recorded, "../_static/drives/") + "</body></html>")
    with serve(root) as base:
        yield base + "book/page.html"
    shutil.rmtree(root, ignore_errors=True)


FRAME_HASH = """() => { const c = document.querySelector("[data-rrx=frame]");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let h = 0, lit = 0; for (let i = 0; i < d.length; i++) { h = (h * 31 + d[i]) >>> 0; if (d[i] > 8) lit++; }
  return [h, lit]; }"""


@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 390])
def test_the_fragment_plays_in_a_browser(site, recorded, width):
    sync_playwright = chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.goto(site)
            frame = page.locator("[data-rrx=frame]")
            page.wait_for_function(f"() => ({FRAME_HASH})()[1] > 1000")  # the first drive's sheet loaded and drawn
            first_hash = page.evaluate(FRAME_HASH)[0]
            first = frame.get_attribute("data-frame")
            score = page.locator("[data-rrx=max]").inner_text()
            # the page opens on the representative stitch: the only relative stitch of two colours here
            typical = showcase.representative(recorded)
            assert score == f"{typical.max_return:.1f}" and typical.pair.encoder in first
            # fits the column: nothing wider than the viewport
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            box = page.locator(".rrx").bounding_box()
            assert box is not None and box["width"] <= width
            # another pair, from the menus: the red encoder with its own head (red track)
            page.select_option("[data-rrx=enc]", "red")
            page.select_option("[data-rrx=pol]", "red")
            page.wait_for_function(f"() => document.querySelector('[data-rrx=frame]').getAttribute('data-frame') "
                                   f"!== {json.dumps(first)}")
            red = next(r for r in recorded if r.pair == Pair("ppo-rel-red", "ppo-rel-red"))
            page.wait_for_function(f"() => {{ const [h, lit] = ({FRAME_HASH})(); return h !== {first_hash} && lit > 1000; }}")
            assert page.locator("[data-rrx=max]").inner_text() == f"{red.max_return:.1f}"
            assert "ppo-rel-red--ppo-rel-red" in frame.get_attribute("data-frame")
            assert "alone" in page.locator("[data-rrx=verdict]").inner_text()
            # a cell of the grid: the affine stitch of red with green's head
            page.select_option("[data-rrx=align]", "affine")
            page.locator("button[data-key='relative|affine|red|green']").click()
            affine = next(r for r in recorded if r.pair == Pair("ppo-rel-red", "ppo-rel-green", "affine"))
            page.wait_for_function("() => document.querySelector('[data-rrx=max]').textContent === "
                                   + json.dumps(f"{affine.max_return:.1f}"))
            assert page.locator("[data-rrx=pol]").input_value() == "green"
            # it plays: the frame moves on to the end of the drive
            page.wait_for_function("() => document.querySelector('[data-rrx=slider]').value === "
                                   "document.querySelector('[data-rrx=slider]').max")
            assert page.locator("[data-rrx=step]").inner_text().startswith(f"step {STEPS} of {STEPS}")
            assert problems == []
            shot = Path(os.environ.get("RELREPS_SHOTS", "")) if os.environ.get("RELREPS_SHOTS") else None
            if shot is not None:
                page.screenshot(path=str(shot / f"explorer-{width}.png"), full_page=True)
        finally:
            browser.close()


def test_digest_names_the_content():
    a = fake("green", "red", [1.0] * 5)
    assert a.digest == hashlib.sha256(a.sprite).hexdigest()[:10]
