"""cocotb testbench of the mask top through its AXI4-Stream ports (cocotbext-axi), every case
also with input idle cycles and random output backpressure. Geometry and region counts come
from the environment the pytest runner sets."""

import itertools
import os
import random

import cocotb
import numpy as np
import tb_common
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from obscura.hw.mask_model import MaskConfig, MaskModel, frames_to_stream
from obscura.hw.regs import ID_VALUE, register_map
from obscura.hw.types import BLOCK_SIZES, Geometry, Mode, Shape
from obscura.sim.compare import mismatch_report

GEOM = Geometry(int(os.environ["OBSCURA_TB_W"]), int(os.environ["OBSCURA_TB_H"]))
NB, NZ = int(os.environ["OBSCURA_TB_BOXES"]), int(os.environ["OBSCURA_TB_ZONES"])
REGS = register_map(NB, NZ)
REG = {r.name: r.offset for r in REGS}
SEED = int(os.environ.get("OBSCURA_TB_SEED", "1"))


class TB:
    """Owns the clock, reset, the register bus and the AXI-Stream source and sink."""

    def __init__(self, dut):
        self.dut = dut
        Clock(dut.clk, 10, unit="ns").start()
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
        dut.reg_we.value = 0
        dut.reg_addr.value = 0
        dut.reg_wdata.value = 0

    async def reset(self):
        await tb_common.reset(self.dut)

    def set_idle_and_backpressure(self, idle, backpressure, seed):
        tb_common.pace(self.source, self.sink, idle, backpressure, seed)

    async def write(self, addr, value):
        self.dut.reg_addr.value = addr
        self.dut.reg_wdata.value = value
        self.dut.reg_we.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.reg_we.value = 0

    async def read(self, addr):
        self.dut.reg_addr.value = addr
        await ReadOnly()
        value = int(self.dut.reg_rdata.value)
        await RisingEdge(self.dut.clk)
        return value

    async def configure(self, cfg):
        from obscura.sim.mask_sim import config_writes
        for addr, value in config_writes(cfg, NB, NZ):
            await self.write(addr, value)

    async def run_stream(self, rgb, first, last):
        """Send a pixel stream (RGB order) and return the output pixels (RGB)."""
        cuts = np.flatnonzero(last) + 1
        if len(cuts) == 0 or cuts[-1] != len(rgb):
            cuts = np.append(cuts, len(rgb))   # a trailing run without `last` (tlast ends it)
        start = 0
        for end in cuts:
            bgr = rgb[start:end, ::-1]
            tuser = np.repeat(first[start:end].astype(int), 3).tolist()
            await self.source.send(AxiStreamFrame(bytes(bgr.tobytes()), tuser=tuser))
            start = end
        out = []
        while sum(len(o) for o in out) < len(rgb):
            try:
                frame = await with_timeout(self.sink.recv(), 40 * len(rgb) + 10000, "ns")
            except SimTimeoutError:
                got = sum(len(o) for o in out)
                raise AssertionError(f"output stalled: {got} of {len(rgb)} pixels came out; "
                                     f"sink holds {self.sink.count()} partial beats") from None
            out.append(np.frombuffer(bytes(frame.tdata), np.uint8).reshape(-1, 3)[:, ::-1])
        return np.concatenate(out)


def frames(n, w, h, seed):
    rng = np.random.default_rng(seed)
    import cv2
    from skimage import data
    base = cv2.resize(data.astronaut(), (w + 8, h + 8), interpolation=cv2.INTER_AREA)
    offs = rng.integers(0, 8, (n, 2))
    return [np.ascontiguousarray(base[oy:oy + h, ox:ox + w]) for oy, ox in offs]


async def check(tb, cfg, rgb, first, last):
    model = MaskModel(GEOM, NB, NZ)
    expected = model.process_stream(rgb, first, last, cfg)
    got = await tb.run_stream(rgb, first, last)
    report = mismatch_report(expected, got, first, last)
    assert not report, report
    assert await tb.read(REG["ERRORS"]) == model.protocol_errors % 65536
    assert await tb.read(REG["FRAMES"]) == model.frames % 65536


PACING = [(0.0, 0.0), (0.3, 0.0), (0.0, 0.4), (0.4, 0.5)]


@cocotb.test()
async def registers_reset_values_and_round_trip(dut):
    tb = TB(dut)
    await tb.reset()
    for reg in REGS:
        assert await tb.read(reg.offset) == reg.reset_value(), reg.name
    assert await tb.read(REG["ID"]) == ID_VALUE
    rng = random.Random(SEED)
    for reg in REGS:
        if reg.access != "rw":
            continue
        mask = sum(((1 << f.width) - 1) << f.lsb for f in reg.fields)
        value = rng.getrandbits(32)
        await tb.write(reg.offset, value)
        assert await tb.read(reg.offset) == value & mask, reg.name
    await tb.write(REG["ID"], 0)          # read-only: ignored
    assert await tb.read(REG["ID"]) == ID_VALUE


@cocotb.test()
async def every_mode_through_axi_stream(dut):
    tb = TB(dut)
    for n, (mode, shape, (idle, bp)) in enumerate(itertools.product(Mode, Shape, PACING)):
        await tb.reset()
        tb.set_idle_and_backpressure(idle, bp, SEED + n)
        block = BLOCK_SIZES[n % 3]
        cfg = MaskConfig(mode=mode, shape=shape, block=block, color=(7, 8, 9),
                         boxes=[(3, 2, 25, 20), (15, 10, 31, 23)][:NB], zones=[(0, 0, 6, 4)][:NZ])
        await tb.configure(cfg)
        await check(tb, cfg, *frames_to_stream(frames(3, 32, 24, n)))


@cocotb.test()
async def malformed_streams_fail_closed(dut):
    tb = TB(dut)
    w, h = 20, 12
    for n, (kind, (idle, bp)) in enumerate(itertools.product(
            ["junk_first", "long", "short", "cut", "tall", "trunc_frame"], PACING)):
        await tb.reset()
        tb.set_idle_and_backpressure(idle, bp, SEED + 100 + n)
        cfg = MaskConfig(mode=Mode.MOSAIC, block=8, color=(250, 0, 250), boxes=[(2, 2, 12, 9)])
        await tb.configure(cfg)
        fr = frames(5, w, h, n)
        rgb, first, last = frames_to_stream(fr)
        per = w * h
        keep = np.ones(len(rgb), bool)
        if kind == "junk_first":
            rgb = np.concatenate([rgb[:7], rgb])
            first = np.concatenate([np.zeros(7, bool), first])
            last = np.concatenate([np.zeros(7, bool), last])
            keep = np.ones(len(rgb), bool)
        elif kind == "long":
            last[2 * per + 3 * w - 1] = False            # line 3 of frame 2 runs into line 4
        elif kind == "short":
            last[2 * per + 3 * w - 5] = True
        elif kind == "cut":
            keep[2 * per + 4 * w + 5: 3 * per] = False   # frame 2 ends mid-line
        elif kind == "tall":
            last[2 * per + 2 * w - 1] = True             # nothing to remove: add lines below
            extra = rgb[2 * per: 2 * per + 2 * w]
            i = 3 * per
            rgb = np.concatenate([rgb[:i], extra, rgb[i:]])
            first = np.concatenate([first[:i], np.zeros(2 * w, bool), first[i:]])
            last = np.concatenate([last[:i], last[2 * per: 2 * per + 2 * w], last[i:]])
            keep = np.ones(len(rgb), bool)
        elif kind == "trunc_frame":
            keep[2 * per + 6 * w: 3 * per] = False       # frame 2 has 6 of 12 lines
        rgb, first, last = rgb[keep], first[keep], last[keep]
        await check(tb, cfg, rgb, first, last)
