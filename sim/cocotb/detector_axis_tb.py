"""cocotb testbench of the detector top: video in through `s_axis_*` (cocotbext-axi source,
with idle cycles), detection records out through `m_det_*` (sink, with backpressure), checked
against `detector_model`; and a frame that arrives before the previous analysis finished."""

import os

import cocotb
import tb_common
from cocotb.clock import Clock
from cocotb.triggers import SimTimeoutError, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from obscura.hw.detector_model import detect
from obscura.samples import astronaut_face_crops

W, H = int(os.environ["OBSCURA_TB_W"]), int(os.environ["OBSCURA_TB_H"])
CASCADE = os.environ["OBSCURA_TB_CASCADE"]
END_BIT = 48


def face_frame(shift=0):
    """A crop of a real photo (scikit-image's astronaut) with one face the cascade finds."""
    return astronaut_face_crops([shift], W, H)[0]


class TB:
    def __init__(self, dut):
        self.dut = dut
        Clock(dut.clk, 10, unit="ns").start()
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_det"), dut.clk, dut.rst)
        dut.min_neighbors.value = 3

    async def reset(self):
        await tb_common.reset(self.dut)

    def pace(self, idle, backpressure, seed=1):
        tb_common.pace(self.source, self.sink, idle, backpressure, seed)

    async def send(self, rgb):
        bgr = rgb[..., ::-1]
        for y in range(H):
            tuser = [1] * 3 + [0] * (3 * W - 3) if y == 0 else 0
            await self.source.send(AxiStreamFrame(bytes(bgr[y].tobytes()), tuser=tuser))

    async def results(self, ends, timeout_cycles):
        """Collect records until `ends` end records: [(boxes, flags)]."""
        out, boxes = [], []
        while len(out) < ends:
            try:
                frame = await with_timeout(self.sink.recv(), 10 * timeout_cycles, "ns")
            except SimTimeoutError:
                raise AssertionError(f"no end record within {timeout_cycles} cycles; "
                                     f"{len(out)} of {ends} frames reported") from None
            rec = int.from_bytes(bytes(frame.tdata), "little")
            if rec >> END_BIT & 1:
                flags = {k: bool(rec >> (END_BIT + 1 + i) & 1) for i, k in
                         enumerate(("analysed", "overrun", "bad_input", "overflow"))}
                out.append((boxes, flags))
                boxes = []
            else:
                boxes.append(tuple(rec >> (12 * k) & 0xFFF for k in range(4)))
        return out


def expected_boxes(rgb):
    return [tuple(int(v) for v in b) for b in detect(rgb, CASCADE).boxes]


@cocotb.test()
async def frames_with_idle_input_and_backpressure(dut):
    tb = TB(dut)
    await tb.reset()
    for k, (idle, bp) in enumerate([(0.0, 0.0), (0.3, 0.6)]):
        tb.pace(idle, bp, seed=k)
        rgb = face_frame(5 * k)
        await tb.send(rgb)
        [(boxes, flags)] = await tb.results(1, 2_000_000)
        assert flags["analysed"] and not flags["overrun"], flags
        want = expected_boxes(rgb)
        assert want, "the test frame should hold a face"
        assert boxes == want, f"pacing {idle, bp}: model {want}, RTL {boxes}"


@cocotb.test()
async def frame_arriving_before_the_analysis_ends_is_an_overrun(dut):
    tb = TB(dut)
    await tb.reset()
    tb.pace(0.0, 0.3)
    a, b = face_frame(0), face_frame(4)
    await tb.send(a)
    await tb.send(b)
    (boxes_a, fa), (boxes_b, fb) = await tb.results(2, 2_000_000)
    assert fa["overrun"] and not fa["analysed"], fa
    assert fb["analysed"] and not fb["overrun"], fb
    assert boxes_b == expected_boxes(b) != []
