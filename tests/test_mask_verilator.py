"""Mask top in the Verilator C++ harness: whole 1280x720 real frames, and randomised streams
with idle cycles and backpressure, against the model bit for bit."""

import numpy as np
import pytest

from conftest import BUILD, real_face_sample
from obscura.hw.mask_model import MaskConfig, MaskModel, frames_to_stream
from obscura.hw.regs import ID_VALUE, register_map
from obscura.hw.types import BLOCK_SIZES, Geometry, Mode, Shape
from obscura.sim.compare import assert_stream_equal

REG = {r.name: r.offset for r in register_map()}


@pytest.fixture(scope="module")
def sim():
    from obscura.sim.mask_sim import MaskSim
    return MaskSim(Geometry(1280, 720))


@pytest.fixture(scope="module")
def hd_frames():
    frame, boxes = real_face_sample(1280, 720)
    # Two frames: the first teaches the geometry and the block means, the second is masked.
    return [frame, np.roll(frame, (3, 5), axis=(0, 1))], boxes


def test_id_register(sim):
    assert sim.dev.read_reg(REG["ID"]) == ID_VALUE


@pytest.mark.parametrize("block", BLOCK_SIZES)
@pytest.mark.parametrize("shape", list(Shape))
@pytest.mark.parametrize("mode", list(Mode))
def test_full_720p_frame_matches_model(sim, hd_frames, mode, shape, block):
    frames, boxes = hd_frames
    cfg = MaskConfig(mode=mode, shape=shape, block=block, color=(20, 200, 60), boxes=boxes,
                     zones=[(1100, 600, 1280, 720), (0, 0, 41, 23)])
    rgb, first, last = frames_to_stream(frames)
    expected = MaskModel(sim.geometry).process_stream(rgb, first, last, cfg)
    sim.dev.reset()
    sim.configure(cfg)
    got, info = sim.process_stream(rgb, first, last)
    assert_stream_equal(expected, got, first, last, frames_like=frames,
                        save_dir=BUILD / "test-failures",
                        tag=f"mask-{mode.name}-{shape.name}-{block}")
    # One pixel per clock: the only cycles beyond the pixel count are the pipeline latency.
    assert info["cycles"] == len(rgb) + sim.dev_latency
    assert sim.dev.read_reg(REG["FRAMES"]) == 2
    assert sim.dev.read_reg(REG["ERRORS"]) == 0
    assert sim.dev.read_reg(REG["STATUS"]) & 3 == 3


def random_stream(rng, n_frames, w, h):
    """Frames of a real photo with random protocol faults; returns (rgb, first, last)."""
    base, _ = real_face_sample(w + 16, h + 16)
    rgbs, firsts, lasts = [], [], []
    for n in range(n_frames):
        oy, ox = rng.integers(0, 16, 2)
        f = base[oy:oy + h, ox:ox + w]
        lines = [f[y] for y in range(h)]
        fault = rng.integers(0, 8) if n >= 2 else 0
        if fault == 1:
            y = rng.integers(0, h)
            lines[y] = lines[y][: rng.integers(1, w)]
        elif fault == 2:
            y = rng.integers(0, h)
            lines[y] = np.concatenate([lines[y], lines[y][: rng.integers(1, 5)]])
        elif fault == 3:
            lines = lines[: rng.integers(1, h)]
        elif fault == 4:
            lines = lines + lines[: rng.integers(1, 4)]
        px = np.concatenate(lines)
        first = np.zeros(len(px), bool)
        first[0] = True
        last = np.zeros(len(px), bool)
        last[np.cumsum([len(line) for line in lines]) - 1] = True
        if fault == 5:                      # a frame cut mid-line
            cut = rng.integers(1, len(px))
            px, first, last = px[:cut], first[:cut], last[:cut]
            last[-1] = False
        if fault == 6:                      # junk without flags
            k = rng.integers(1, 50)
            px = np.concatenate([px, px[:k]])
            first = np.concatenate([first, np.zeros(k, bool)])
            last = np.concatenate([last, np.zeros(k, bool)])
        rgbs.append(px)
        firsts.append(first)
        lasts.append(last)
    return np.concatenate(rgbs), np.concatenate(firsts), np.concatenate(lasts)


@pytest.mark.parametrize("seed", range(6))
def test_random_faults_idle_and_backpressure(sim, seed):
    rng = np.random.default_rng(seed)
    w, h = int(rng.integers(40, 200)), int(rng.integers(20, 120))
    rgb, first, last = random_stream(rng, 10, w, h)
    boxes = [tuple(int(v) for v in (x0, y0, x0 + rng.integers(1, 80), y0 + rng.integers(1, 60)))
             for x0, y0 in rng.integers(0, [w, h], (int(rng.integers(0, 33)), 2))]
    cfg = MaskConfig(mode=Mode(int(rng.integers(0, 3))), shape=Shape(int(rng.integers(0, 2))),
                     block=int(rng.choice(BLOCK_SIZES)), color=tuple(rng.integers(0, 256, 3)),
                     boxes=boxes, zones=[(0, 0, int(rng.integers(1, 30)), 9)])
    model = MaskModel(sim.geometry)
    expected = model.process_stream(rgb, first, last, cfg)
    sim.dev.reset()
    sim.configure(cfg)
    got, _ = sim.process_stream(rgb, first, last, idle=0.2, stall=0.3, seed=seed)
    assert_stream_equal(expected, got, first, last)
    assert sim.dev.read_reg(REG["ERRORS"]) == model.protocol_errors
    assert sim.dev.read_reg(REG["FRAMES"]) == model.frames


def test_settings_change_between_frames(sim):
    """Registers written between frames take effect at the next frame start."""
    frame, boxes = real_face_sample(320, 180)
    cfgs = [MaskConfig(mode=Mode.MOSAIC, block=8, boxes=boxes),
            MaskConfig(mode=Mode.MOSAIC, block=8, boxes=boxes),
            MaskConfig(mode=Mode.BLUR, shape=Shape.ELLIPSE, block=8, boxes=boxes[:1]),
            MaskConfig(mode=Mode.BLUR, block=16, boxes=boxes),       # block change: fill
            MaskConfig(mode=Mode.SOLID, color=(1, 2, 3), zones=[(0, 0, 50, 50)]),
            MaskConfig(mode=Mode.MOSAIC, block=16, boxes=boxes)]
    model = MaskModel(sim.geometry)
    sim.dev.reset()
    for n, cfg in enumerate(cfgs):
        f = np.roll(frame, n * 4, axis=1)
        rgb, first, last = frames_to_stream([f])
        expected = model.process_stream(rgb, first, last, cfg)
        sim.configure(cfg)
        got, _ = sim.process_stream(rgb, first, last)
        assert_stream_equal(expected, got, first, last)
