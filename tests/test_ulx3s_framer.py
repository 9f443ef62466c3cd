"""The frame-locked DVI framer in Amaranth's simulator on a tiny raster: frames shown whole
and in order, a malformed frame completed in the fill colour from the first bad pixel, the
display running on with empty frames when the input stops, and the symbols' latency."""

import numpy as np
from amaranth.sim import Simulator

from obscura.hw.tmds import TMDSEncoder
from obscura.hw.video_out import DVIFramer
from obscura.hw.video_timing import VideoTiming
from obscura.sim.board_sim import decode_tmds

T = VideoTiming(8, 2, 2, 2, 4, 1, 1, 1, 1e6)
W, H = T.h_active, T.v_active


def frame(seed):
    return np.random.default_rng(seed).integers(1, 256, (H, W, 3)).astype(np.uint8)


def stream_of(f, short_line=None):
    """Pixels (r, g, b, first, last) of frame `f`; line `short_line` loses its last pixel."""
    px = []
    for y in range(H):
        n = W - 1 if y == short_line else W
        for x in range(n):
            px.append((*f[y, x], int(x == 0 and y == 0), int(x == n - 1)))
    return px


def run(pixels, clocks, max_hold=20):
    dut = DVIFramer(T, fifo_depth=64, prefill=W, max_hold=max_hold)
    rec = []

    async def source(ctx):
        for r, g, b, first, last in pixels:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, {"r": r, "g": g, "b": b, "first": first, "last": last})
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        await ctx.tick().repeat(TMDSEncoder.LATENCY)    # encoders out of reset
        for _ in range(clocks):
            rec.append((ctx.get(dut.tmds_r), ctx.get(dut.tmds_g), ctx.get(dut.tmds_b)))
            await ctx.tick()
        rec.append((ctx.get(dut.frames_shown), ctx.get(dut.frames_empty),
                    ctx.get(dut.frames_broken)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    counters = rec.pop()
    frames, problems = decode_tmds(np.array(rec), W, H)
    return frames, problems, counters


def test_frames_shown_broken_and_empty():
    a, b, c = frame(1), frame(2), frame(3)
    pixels = stream_of(a) + stream_of(b, short_line=1) + stream_of(c)
    per_frame = T.h_total * T.v_total
    frames, problems, (shown, empty, broken) = run(pixels, per_frame * 3 + 20 * T.h_total +
                                                   per_frame + 10)
    assert not problems, problems
    assert len(frames) >= 4
    assert np.array_equal(frames[0], a)
    # b: line 1 ends one pixel early; from there the frame is filled (black).
    exp_b = b.copy()
    exp_b.reshape(-1, 3)[W + W - 2:] = 0
    assert np.array_equal(frames[1], exp_b), (frames[1], exp_b)
    assert np.array_equal(frames[2], c)
    # No more input: after max_hold lines the raster runs on with an empty (black) frame.
    assert (frames[3] == 0).all()
    assert (shown, broken) == (3, 1) and empty >= 1


def test_symbol_latency():
    # The first data symbol comes LATENCY clocks after the raster's first active pixel (the
    # generator waits on its last blanking line: one line after reset, then x = y = 0).
    frames_px = stream_of(frame(4))
    dut = DVIFramer(T, fifo_depth=64, prefill=W, max_hold=1000)
    first_de = []

    async def source(ctx):
        for r, g, b, first, last in frames_px:
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, {"r": r, "g": g, "b": b, "first": first, "last": last})
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        start = None
        for clock in range(T.h_total * T.v_total * 3):
            if start is None and ctx.get(dut.frame_start):
                start = clock + 1           # x = y = 0 on the next clock
            sym = ctx.get(dut.tmds_g)
            if start is not None and sym not in (0x354, 0x0AB, 0x154, 0x2AB):
                first_de.append(clock - start)
                return
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    assert first_de == [DVIFramer.LATENCY] and DVIFramer.LATENCY == 1 + TMDSEncoder.LATENCY
