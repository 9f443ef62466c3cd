"""TMDS encoder (DVI 1.0 section 3.2.2) against its model, DC balance, transition minimisation,
decode round trip; the raster timing generator against its model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from obscura.hw.tmds import (
    CTRL_TOKENS,
    TMDSEncoder,
    tmds_decode,
    tmds_decode_stream,
    tmds_encode,
)
from obscura.hw.video_timing import CEA_720P30, TimingGenerator, VideoTiming, timing_model


def random_video(n, seed):
    """Random bytes with blanking runs in between (de low), as a raster has."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, n)
    # Bias half the samples towards few or many ones: exercises both stage-1 branches and
    # long runs of the same disparity sign.
    data[: n // 2] = rng.choice([0x00, 0xFF, 0x01, 0xFE, 0x10, 0xEF, 0x0F], n // 2)
    rng.shuffle(data)
    de = np.ones(n, bool)
    for start in rng.integers(0, n - 40, n // 200):
        de[start:start + rng.integers(1, 40)] = False
    ctrl = rng.integers(0, 4, n)
    return data, de, ctrl


def simulate_encoder(data, de, ctrl):
    dut = TMDSEncoder()
    got = []

    async def bench(ctx):
        n = len(data)
        for i in range(n + TMDSEncoder.LATENCY):
            if i < n:
                ctx.set(dut.data, int(data[i]))
                ctx.set(dut.de, int(de[i]))
                ctx.set(dut.ctrl, int(ctrl[i]))
            await ctx.tick()
            if i >= TMDSEncoder.LATENCY - 1:
                got.append(ctx.get(dut.symbol))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got[:len(data)], np.uint16)


def test_encoder_matches_model_on_random_data():
    data, de, ctrl = random_video(4000, seed=1)
    expected, _ = tmds_encode(data, de, ctrl)
    got = simulate_encoder(data, de, ctrl)
    bad = np.flatnonzero(expected != got)
    assert len(bad) == 0, (f"symbol {bad[0]}: data {data[bad[0]]:#04x} de {de[bad[0]]}: "
                           f"expected {expected[bad[0]]:010b}, got {got[bad[0]]:010b}")


def test_model_keeps_dc_balance_and_minimises_transitions():
    data, de, ctrl = random_video(20000, seed=2)
    de[:] = True
    sym, disp = tmds_encode(data, de, ctrl)
    # The running disparity (ones minus zeros sent) stays bounded: DVI's encoder keeps it
    # within +-10 by construction; a broken branch drifts by hundreds over 20000 symbols.
    ones = np.array([bin(int(s)).count("1") for s in sym])
    running = np.cumsum(2 * ones - 10)
    assert np.abs(running).max() <= 10
    assert np.array_equal(running, disp)
    # Stage 1: at most 4 transitions inside the 8 data bits of q_m (before any inversion,
    # which keeps the transition count).
    low = sym.astype(np.int64) & 0xFF
    trans = np.array([bin((v ^ (v >> 1)) & 0x7F).count("1") for v in low])
    assert trans.max() <= 4


def test_decode_round_trip_and_control_tokens():
    data, de, ctrl = random_video(5000, seed=3)
    sym, _ = tmds_encode(data, de, ctrl)
    got_de, got = tmds_decode_stream(sym)
    assert np.array_equal(got_de, de)
    assert np.array_equal(got[de], data[de].astype(np.uint8))
    assert np.array_equal(got[~de], ctrl[~de].astype(np.uint8))
    for c, tok in enumerate(CTRL_TOKENS):
        assert tmds_decode(tok) == ("ctrl", c)
    # Every byte decodes from every symbol the encoder can emit for it (both parities).
    for d in range(256):
        for prefix in ([], [0x00], [0xFF], [0x00, 0x00], [0xFF, 0xFF]):
            s, _ = tmds_encode(prefix + [d], [1] * (len(prefix) + 1), [0] * (len(prefix) + 1))
            assert tmds_decode(s[-1]) == ("data", d)


SMALL = VideoTiming(8, 2, 3, 1, 4, 1, 2, 1, 1e6, h_pol=False, v_pol=True)


@pytest.mark.parametrize("timing", [SMALL, CEA_720P30], ids=["small", "720p30"])
def test_timing_generator_matches_model(timing):
    dut = TimingGenerator(timing)
    frames = 2 if timing is SMALL else 1
    n = timing.h_total * timing.v_total * frames
    if timing is CEA_720P30:
        n = timing.h_total * 8          # the first lines and the sync edges of a 720p raster
    exp_de, exp_hs, exp_vs = (a[:n] for a in timing_model(timing, frames))
    got = {"de": [], "hs": [], "vs": []}

    async def bench(ctx):
        for _ in range(n):
            got["de"].append(ctx.get(dut.de))
            got["hs"].append(ctx.get(dut.hsync))
            got["vs"].append(ctx.get(dut.vsync))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for name, exp in (("de", exp_de), ("hs", exp_hs), ("vs", exp_vs)):
        g = np.array(got[name], bool)
        bad = np.flatnonzero(g != exp)
        assert len(bad) == 0, (f"{name} at clock {bad[0]} (x {bad[0] % timing.h_total}, "
                               f"y {bad[0] // timing.h_total}): expected {exp[bad[0]]}")


def test_timing_rejects_bad_modeline():
    with pytest.raises(ValueError, match="h_front must be a positive integer"):
        VideoTiming(8, 0, 3, 1, 4, 1, 2, 1, 1e6)
    assert round(CEA_720P30.frame_hz, 3) == 30.0
