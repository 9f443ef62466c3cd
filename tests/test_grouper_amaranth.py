"""Grouper RTL in Amaranth's simulator against `detector_model.group`, with its memories in
block RAM and in LUT RAM (the ULX3S board's build): raw windows in clumps like a detector's,
the boxes out in order, the overflow count when the clusters run out."""

import random

import pytest
from amaranth.sim import Simulator

from obscura.hw.detector_model import group
from obscura.hw.grouper import Grouper


def clumps(rng, faces, per_face, noise):
    """Raw windows (x, y, w, h) in scan order: jittered copies of a few faces at nearby
    sizes, and lone windows."""
    raw = []
    for _ in range(faces):
        x, y, s = rng.randrange(0, 560), rng.randrange(0, 300), rng.randrange(24, 120)
        for _ in range(per_face):
            d = max(1, s // 12)
            size = s + rng.randrange(-d, d + 1)
            raw.append((max(0, x + rng.randrange(-d, d + 1)),
                        max(0, y + rng.randrange(-d, d + 1)), size, size))
    for _ in range(noise):
        s = rng.randrange(24, 200)
        raw.append((rng.randrange(0, 600), rng.randrange(0, 340), s, s))
    return sorted(raw, key=lambda r: (r[2], r[1], r[0]))     # by level, then rows


def run(dut, raw, min_neighbors):
    """Feed `raw`, finish, collect the boxes; return (boxes, overflow)."""
    out = {}

    async def bench(ctx):
        ctx.set(dut.min_neighbors, min_neighbors)
        ctx.set(dut.boxes.ready, 1)
        boxes = []

        async def tick():                               # every clock: a box out?
            if ctx.get(dut.boxes.valid):
                b = ctx.get(dut.boxes.payload)
                boxes.append((b.x, b.y, b.w, b.h))
            await ctx.tick()

        for k, r in enumerate(raw):
            ctx.set(dut.raw.payload, {"x": r[0], "y": r[1], "w": r[2], "h": r[3]})
            ctx.set(dut.raw.valid, 1)
            for _ in range(10_000):
                taken = ctx.get(dut.raw.ready)
                await tick()
                if taken:
                    break
            else:
                raise AssertionError(f"raw window {k} was never taken")
            ctx.set(dut.raw.valid, 0)
            for _ in range(k % 3):                      # idle cycles between windows
                await tick()
        while ctx.get(dut.busy):                         # every window clustered
            await tick()
        overflow = ctx.get(dut.overflow)
        ctx.set(dut.finish, 1)
        await ctx.tick()
        ctx.set(dut.finish, 0)
        for _ in range(2_000_000):
            if ctx.get(dut.done):
                break
            await tick()
        else:
            raise AssertionError("grouping never finished")
        out["got"] = (boxes, overflow)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out["got"]


@pytest.mark.parametrize("lut_ram", [False, True], ids=["block_ram", "lut_ram"])
@pytest.mark.parametrize("seed", [0, 1])
def test_grouper_equals_the_model(lut_ram, seed):
    rng = random.Random(seed)
    raw = clumps(rng, faces=6, per_face=rng.randrange(2, 7), noise=8)
    for min_neighbors in (3, 0):
        want = group(raw, min_neighbors, max_clusters=32)
        got = run(Grouper(max_clusters=32, lut_ram=lut_ram), raw, min_neighbors)
        assert got == want, f"min_neighbors {min_neighbors}: got {got}, model {want}"


def test_overflow_counts_the_windows_with_no_free_cluster():
    rng = random.Random(5)
    raw = clumps(rng, faces=3, per_face=4, noise=12)
    want = group(raw, 2, max_clusters=8)
    assert want[1] > 0
    assert run(Grouper(max_clusters=8, lut_ram=True), raw, 2) == want
