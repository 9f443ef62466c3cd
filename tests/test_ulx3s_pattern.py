"""The no-camera test pattern against its model (frames, markers, pacing)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from obscura.hw.test_pattern import TestPattern, pattern_frames


def test_pattern_matches_model():
    w, h, s, period = 40, 30, 12, 40 * 30 + 50
    dut = TestPattern(w, h, s, period)
    got, starts = [], []

    async def bench(ctx):
        ctx.set(dut.enable, 1)
        ctx.set(dut.o.ready, 1)
        for cycle in range(period * 4):
            if ctx.get(dut.o.valid):
                p = ctx.get(dut.o.payload)
                got.append((p.r, p.g, p.b, p.first, p.last))
                if p.first:
                    starts.append(cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    frames = pattern_frames(w, h, s, 3)
    got = np.array(got[:3 * w * h])
    assert len(got) == 3 * w * h
    assert np.diff(starts).tolist()[:2] == [period, period]
    for k, f in enumerate(frames):
        g = got[k * w * h:(k + 1) * w * h]
        bad = np.flatnonzero((g[:, :3] != f.reshape(-1, 3)).any(1))
        assert len(bad) == 0, (f"frame {k}, x {bad[0] % w}, y {bad[0] // w}: expected "
                               f"{tuple(f.reshape(-1, 3)[bad[0]])}, got {tuple(g[bad[0], :3])}")
        assert g[0, 3] == 1 and g[1:, 3].sum() == 0
        assert np.array_equal(np.flatnonzero(g[:, 4]), np.arange(w - 1, w * h, w))
    # The blocks move.
    assert (frames[0] != frames[2]).any()


def test_pattern_rejects_bad_parameters():
    with pytest.raises(ValueError, match="size must be"):
        TestPattern(40, 30, 30, 5000)
    with pytest.raises(ValueError, match="shorter than a frame"):
        TestPattern(40, 30, 12, 100)
