"""cocotb testbench of the PYNQ overlay's IP (`ObscuraPynq`) with cocotbext-axi: AXI4-Stream
source and sink with 32-bit tdata (one frame per packet, as the AXI DMA sends and receives
them), idle cycles and backpressure, AXI4-Lite master for the registers. Output checked bit for
bit against `PipelineModel`; a short packet fails closed and the IP recovers."""

import os

import cocotb
import numpy as np
import tb_common
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotbext.axi import (
    AxiLiteBus,
    AxiLiteMaster,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSink,
    AxiStreamSource,
)

from obscura.hw.pipeline_model import PipelineConfig, PipelineModel
from obscura.hw.regs import pynq_register_map
from obscura.samples import astronaut_face_crops
from obscura.sim.pipeline_sim import pipeline_writes

W, H = int(os.environ["OBSCURA_TB_W"]), int(os.environ["OBSCURA_TB_H"])
CASCADE = os.environ["OBSCURA_TB_CASCADE"]
N = W * H
REG = {r.name: r.offset for r in pynq_register_map(W, H)}
FILL = (255, 0, 255)


def face_frames(shifts):
    return astronaut_face_crops(shifts, W, H)


def to_words(rgb):
    """RGB frame -> bytes of 32-bit words B, G, R, 0."""
    words = np.zeros((H, W, 4), np.uint8)
    words[..., :3] = rgb[..., ::-1]
    return words.tobytes()


class TB:
    def __init__(self, dut):
        self.dut = dut
        Clock(dut.clk, 10, unit="ns").start()
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)

    async def read(self, name):
        return int.from_bytes((await self.axil.read(REG[name], 4)).data, "little")

    async def write(self, offset, value):
        await self.axil.write(offset, int(value).to_bytes(4, "little"))

    async def transfer(self, payload):
        """One packet in (tlast on its last word), one packet out; return the output words
        (N, 4) after the detector has finished."""
        await self.source.send(AxiStreamFrame(payload))
        frame = await self.sink.recv()
        while await self.read("STATUS") & (1 << 3):
            await ClockCycles(self.dut.clk, 2000)
        return np.frombuffer(bytes(frame.tdata), np.uint8).reshape(-1, 4)


def check(k, got, want):
    assert got.shape == (N, 4), f"frame {k}: {len(got)} words out, tlast not at word {N - 1}"
    assert not got[:, 3].any(), f"frame {k}: byte 3 of a word is not 0"
    got = got[:, 2::-1].reshape(H, W, 3)
    bad = np.argwhere((got != want).any(axis=2))
    assert len(bad) == 0, (f"frame {k}: {len(bad)} pixels differ, first at (x, y) = "
                           f"{tuple(bad[0][::-1])}: expected {want[tuple(bad[0])]}, got "
                           f"{got[tuple(bad[0])]}")


@cocotb.test()
async def dma_frames_bit_exact_with_idle_and_backpressure(dut):
    tb = TB(dut)
    await tb_common.reset(dut)
    assert (await tb.read("WIDTH"), await tb.read("HEIGHT")) == (W, H)
    cfg = PipelineConfig(color=FILL)
    for offset, value in pipeline_writes(cfg):
        await tb.write(offset, value)
    frames = face_frames([0, 4, 5, 6])
    expected = PipelineModel(W, H, CASCADE).process_frames(frames, cfg)
    for k, (rgb, want) in enumerate(zip(frames, expected)):
        tb_common.pace(tb.source, tb.sink, 0.2 if k % 2 else 0.0, 0.3 if k % 2 else 0.0, k)
        check(k, await tb.transfer(to_words(rgb)), want)
    assert await tb.read("DMA_FRAMES") == len(frames)
    assert await tb.read("DMA_ERRORS") == 0


@cocotb.test()
async def short_packet_fails_closed_and_recovers(dut):
    tb = TB(dut)
    await tb_common.reset(dut)
    for offset, value in pipeline_writes(PipelineConfig(color=FILL)):
        await tb.write(offset, value)
    fill = np.array([FILL[2], FILL[1], FILL[0], 0], np.uint8)
    frames = face_frames([0, 4, 5, 6, 5, 4, 7])
    outs = []
    for k, rgb in enumerate(frames):
        payload = to_words(rgb)
        if k == 3:
            payload = payload[:4 * (N // 3)]
        outs.append(await tb.transfer(payload))
        assert len(outs[-1]) == N, f"frame {k}: the output is not one whole frame"
    filled = [bool((o == fill).all()) for o in outs]
    assert (outs[3][N // 3:] == fill).all()
    assert filled == [True, True, False, False, True, True, False], filled
    assert await tb.read("DMA_ERRORS") == 1
    assert await tb.read("DMA_STATUS") & 1 == 0        # the last transfer was clean
