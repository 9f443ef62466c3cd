"""What every cocotb testbench here shares: reset, and random idle / backpressure patterns."""

import itertools
import random

from cocotb.triggers import RisingEdge

__all__ = ["reset", "pace"]


async def reset(dut, cycles=3):
    """Hold `rst` for `cycles` clocks."""
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def pace(source, sink, idle, backpressure, seed):
    """Input idle cycles on `source` and output backpressure on `sink`, each with the given
    chance per clock (repeating patterns of co-prime lengths), or none."""
    rng = random.Random(seed)
    for port, chance, period in ((source, idle, 997), (sink, backpressure, 1009)):
        if chance:
            port.set_pause_generator(itertools.cycle(
                [rng.random() < chance for _ in range(period)]))
        else:
            # Stopping a generator leaves `pause` as it last was: clear it explicitly.
            port.set_pause_generator(None)
            port.pause = False
