"""Drive a pixel-stream component in Amaranth's simulator, with idle cycles and backpressure."""

import numpy as np
from amaranth.sim import Simulator

__all__ = ["run_stream"]


def run_stream(dut, rgb, first, last, setup=None, idle=0.0, backpressure=0.0, seed=0,
               max_cycles=None, finish=None):
    """Push a pixel stream through `dut` (ports `i`, `o`).

    Return (out_rgb, out_first, out_last, cycles).

    `setup(ctx)` sets control ports before the first pixel, `finish(ctx)` runs after the last
    pixel is out and its result is stored in `run_stream.finished`; `idle` and `backpressure`
    are the probabilities of an input gap and of `o.ready` low on any cycle (seeded).
    """
    n = len(rgb)
    rng = np.random.default_rng(seed)
    result = {"rgb": [], "first": [], "last": [], "cycles": 0}
    limit = max_cycles or (n * 4 + 10000) * (1 + int(10 * (idle + backpressure)))

    async def bench(ctx):
        if setup is not None:
            setup(ctx)
        k = 0
        cycles = 0
        while len(result["rgb"]) < n:
            drive = k < n and rng.random() >= idle
            ctx.set(dut.i.valid, int(drive))
            if drive:
                ctx.set(dut.i.payload, {"r": int(rgb[k, 0]), "g": int(rgb[k, 1]),
                                        "b": int(rgb[k, 2]), "first": int(first[k]),
                                        "last": int(last[k])})
            ctx.set(dut.o.ready, int(rng.random() >= backpressure))
            await ctx.delay(1e-9)   # let combinational ready settle
            took = drive and ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                px = ctx.get(dut.o.payload)
                result["rgb"].append((px.r, px.g, px.b))
                result["first"].append(px.first)
                result["last"].append(px.last)
            await ctx.tick()
            cycles += 1
            if took:
                k += 1
            if cycles > limit:
                raise TimeoutError(f"stream stalled: {len(result['rgb'])} of {n} pixels out "
                                   f"after {cycles} cycles ({k} in)")
        result["cycles"] = cycles
        if finish is not None:
            ctx.set(dut.i.valid, 0)
            result["finished"] = finish(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    run_stream.finished = result.get("finished")
    return (np.array(result["rgb"], dtype=np.uint8).reshape(-1, 3),
            np.array(result["first"], bool), np.array(result["last"], bool), result["cycles"])
