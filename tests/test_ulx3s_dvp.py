"""DVP capture (RGB565 byte pairs, VSYNC/HREF) against its model, and the crossing into the
pipeline's clock domain through the AsyncFIFO under clock ratios an OV5640 can produce."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from conftest import load_board_module, real_frame_rgb
from obscura.hw.dvp import DVPInput, dvp_capture_model, dvp_encode, dvp_fifo_depth, rgb565_quantize
from obscura.hw.mask_model import frames_to_stream
from obscura.hw.ov5640 import OV5640_HTS


def frames(w=24, h=6, n=2):
    base = real_frame_rgb(64, 48)
    return [np.ascontiguousarray(base[k:k + h, 3 * k:3 * k + w]) for k in range(n)]


def run_capture(vsync, href, data, cam_period, sync_period=13.468e-9, ready=None,
                depth=64):
    dut = DVPInput(depth=depth)
    got = {"rgb": [], "first": [], "last": [], "overflow": 0}
    done = {"cam": False}

    async def camera(ctx):
        await ctx.tick("cam").repeat(4)
        for v, h, d in zip(vsync, href, data):
            ctx.set(dut.vsync, int(v))
            ctx.set(dut.href, int(h))
            ctx.set(dut.data, int(d))
            await ctx.tick("cam")
        ctx.set(dut.href, 0)
        await ctx.tick("cam").repeat(20)
        done["cam"] = True

    async def sink(ctx):
        k = 0
        while not done["cam"] or ctx.get(dut.o.valid):
            r = 1 if ready is None else int(ready(k))
            ctx.set(dut.o.ready, r)
            await ctx.delay(1e-10)
            if r and ctx.get(dut.o.valid):
                p = ctx.get(dut.o.payload)
                got["rgb"].append((p.r, p.g, p.b))
                got["first"].append(p.first)
                got["last"].append(p.last)
            await ctx.tick()
            k += 1
        got["overflow"] = ctx.get(dut.overflow)

    sim = Simulator(dut)
    sim.add_clock(sync_period)
    sim.add_clock(cam_period, domain="cam")
    sim.add_testbench(camera)
    sim.add_testbench(sink)
    sim.run()
    return (np.array(got["rgb"], np.uint8).reshape(-1, 3), np.array(got["first"], bool),
            np.array(got["last"], bool), got["overflow"])


# PCLK against the 74.25 MHz pipeline clock: 84 MHz (OV5640 720p30 RGB565: two PCLKs per pixel
# at 42 Mpixel/s), 96 MHz (its DVP maximum), 24 MHz (a slow mode); the FIFO must pass every
# pixel in order whichever side is faster.
@pytest.mark.parametrize("pclk_mhz", [84.0, 96.0, 24.0])
def test_capture_crosses_domains_bit_exact(pclk_mhz):
    fr = frames()
    vs, hr, da = dvp_encode(fr, h_blank=5)
    exp_rgb, exp_first, exp_last = dvp_capture_model(vs, hr, da)
    # The model is the RGB565 view of the frames, with the stream contract's markers.
    rgb, first, last = frames_to_stream([rgb565_quantize(f) for f in fr])
    assert np.array_equal(exp_rgb, rgb)
    assert np.array_equal(exp_first, first) and np.array_equal(exp_last, last)
    got_rgb, got_first, got_last, overflow = run_capture(vs, hr, da, 1e-6 / pclk_mhz)
    assert not overflow
    assert len(got_rgb) == len(rgb), f"{len(got_rgb)} of {len(rgb)} pixels"
    bad = np.flatnonzero((got_rgb != rgb).any(1) | (got_first != first) | (got_last != last))
    if len(bad):
        i = bad[0]
        w = fr[0].shape[1]
        pytest.fail(f"pixel {i} (frame {i // (w * 6)}, x {i % w}, y {(i // w) % 6}): expected "
                    f"{tuple(rgb[i])} first {first[i]} last {last[i]}, got "
                    f"{tuple(got_rgb[i])} first {got_first[i]} last {got_last[i]}")


def test_fifo_full_drops_pixels_and_says_so():
    fr = frames(n=1)
    vs, hr, da = dvp_encode(fr, h_blank=5)
    # The pipeline side stops taking pixels for a while: pixels are lost, never duplicated.
    rgb, _, _, overflow = run_capture(vs, hr, da, 1e-6 / 84, depth=8,
                                      ready=lambda k: k > 500)
    assert overflow
    n_exp = fr[0].shape[0] * fr[0].shape[1]
    assert 0 < len(rgb) < n_exp


def test_board_fifo_holds_what_a_camera_line_leaves_waiting():
    # On the board the camera sends a line's 1280 pixels at 41.9 Mpixel/s and the pipeline
    # takes one a 37.14 MHz clock: ~146 pixels wait at the end of each line. Two camera lines
    # at the board's own clocks: the board's depth passes them all, the default 64 does not.
    top = load_board_module("top")
    assert top.DVP_DEPTH == dvp_fifo_depth(1280, top.PIXEL_HZ, top.CAMERA_PIXEL_HZ) == 256
    assert dvp_fifo_depth(1280, 74.25e6, top.CAMERA_PIXEL_HZ) == 64   # the pipeline faster
    line = np.tile(real_frame_rgb(64, 48)[:2], (1, 20, 1))             # 2 lines of 1280
    vs, hr, da = dvp_encode([line], h_blank=2 * OV5640_HTS - 2 * 1280)
    cam, sync = 1 / top.PCLK_HZ, 1 / top.PIXEL_HZ
    rgb, _, _, overflow = run_capture(vs, hr, da, cam, sync, depth=top.DVP_DEPTH)
    assert not overflow and len(rgb) == 2 * 1280
    assert np.array_equal(rgb, rgb565_quantize(line).reshape(-1, 3))
    _, _, _, overflow = run_capture(vs, hr, da, cam, sync, depth=64)
    assert overflow
