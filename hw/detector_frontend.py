"""Luma and D x D downscale on the incoming pixel stream: the detector's base-image writer.

One pixel per clock, never stalling (the detector only taps the video stream). Writes the base
image (`detector_model.luma` then `downscale`) pixel by pixel and reports each frame's end with
whether it was well formed at the detector's geometry; a frame that is not (wrong size, a line
too short or long, a `first` before the end) must not be analysed, and the pipeline fails closed.
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .types import COORD_BITS, Pixel

__all__ = ["LumaDownscale"]


class LumaDownscale(wiring.Component):
    """Ports: `valid`/`pixel` in (always accepted); `wr_en`, `wr_x`, `wr_y`, `wr_data` base-image
    writes; `frame_end` pulse with `frame_ok`, after the frame's last write."""

    def __init__(self, width, height, downscale):
        if downscale not in (1, 2, 4):
            raise ValueError(f"downscale must be 1, 2 or 4, not {downscale!r}")
        self.width, self.height, self.d = width, height, downscale
        self.base_w, self.base_h = width // downscale, height // downscale
        super().__init__({
            "valid": In(1), "pixel": In(Pixel),
            "wr_en": Out(1), "wr_x": Out(COORD_BITS), "wr_y": Out(COORD_BITS), "wr_data": Out(8),
            "frame_end": Out(1), "frame_ok": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        d, lg = self.d, self.d.bit_length() - 1
        px = self.pixel

        # S0: position and well-formedness of each beat.
        x = Signal(COORD_BITS + 1)
        y = Signal(COORD_BITS + 1)
        in_frame = Signal()
        ok = Signal()
        s1_valid, s1_x, s1_y = Signal(), Signal(COORD_BITS + 1), Signal(COORD_BITS + 1)
        s1_prod = [Signal(23, name=f"s1_prod_{c}") for c in "rgb"]
        s1_end, s1_ok = Signal(), Signal()
        m.d.sync += [s1_valid.eq(0), s1_end.eq(0)]
        with m.If(self.valid):
            cx = Mux(px.first, 0, x)
            cy = Mux(px.first, 0, y)
            live = px.first | in_frame
            inside = (cx < self.width) & (cy < self.height)
            good = Mux(px.first, 1, ok) & inside & ~(px.last & (cx != self.width - 1))
            m.d.sync += [s1_valid.eq(live & inside), s1_x.eq(cx), s1_y.eq(cy),
                         s1_prod[0].eq(px.r * 9798), s1_prod[1].eq(px.g * 19235),
                         s1_prod[2].eq(px.b * 3735)]
            with m.If(px.first & in_frame):
                # The previous frame ended early: report it as malformed.
                m.d.sync += [s1_end.eq(1), s1_ok.eq(0)]
            with m.If(live):
                m.d.sync += [ok.eq(good), in_frame.eq(1), x.eq(cx + 1), y.eq(cy)]
                with m.If(px.last):
                    m.d.sync += [x.eq(0), y.eq(cy + 1)]
                    with m.If(cy == self.height - 1):
                        m.d.sync += [in_frame.eq(0), s1_end.eq(1), s1_ok.eq(good)]

        # S1 -> S2: the luma's sum (timing: the three products and their sum in one clock were a
        # seed's worst path at 906d3a2, 13.5 ns with 6.1 of logic). S2 follows S1 every clock,
        # so `s2_x` holds over idle cycles as `s1_x` does.
        s2_valid, s2_x, s2_y = Signal(), Signal(COORD_BITS + 1), Signal(COORD_BITS + 1)
        s2_luma, s2_end, s2_ok = Signal(8), Signal(), Signal()
        m.d.sync += [s2_valid.eq(s1_valid), s2_x.eq(s1_x), s2_y.eq(s1_y), s2_end.eq(s1_end),
                     s2_ok.eq(s1_ok), s2_luma.eq((sum(s1_prod) + 16384) >> 15)]

        # S2: horizontal sums of D pixels, vertical sums of D rows in a line buffer.
        bx = s2_x >> lg
        by = s2_y >> lg
        col_end = (s2_x & (d - 1)) == d - 1
        row_first = (s2_y & (d - 1)) == 0
        row_end = (s2_y & (d - 1)) == d - 1
        hacc = Signal(12)
        m.d.sync += [self.wr_en.eq(0), self.frame_end.eq(s2_end), self.frame_ok.eq(s2_ok)]
        if d == 1:
            with m.If(s2_valid):
                m.d.sync += [self.wr_en.eq(1), self.wr_x.eq(s2_x), self.wr_y.eq(s2_y),
                             self.wr_data.eq(s2_luma)]
            return m
        m.submodules.linebuf = linebuf = memory.Memory(shape=12, depth=self.base_w + 1,
                                                         init=[])
        lw = linebuf.write_port()
        lr = linebuf.read_port()
        # The line buffer is read a beat ahead (the address of the beat entering S2) and its
        # output registered: a block RAM's clock-to-out, an adder and the write data do not fit
        # a clock. A block's last beat uses `above`, read for the beat before it in S2, which
        # is the same block (D >= 2 pixels; `s2_x` holds over idle cycles).
        above = Signal(12)
        m.d.sync += above.eq(lr.data)
        total = Mux((s2_x & (d - 1)) == 0, 0, hacc) + s2_luma
        partial = Mux(row_first, 0, above) + total
        in_base = (bx < self.base_w) & (by < self.base_h)
        m.d.comb += [lr.addr.eq(s1_x >> lg), lw.addr.eq(bx), lw.data.eq(partial),
                     lw.en.eq(s2_valid & col_end & ~row_end & in_base)]
        with m.If(s2_valid):
            m.d.sync += hacc.eq(total)
            with m.If(col_end & row_end & in_base):
                m.d.sync += [self.wr_en.eq(1), self.wr_x.eq(bx), self.wr_y.eq(by),
                             self.wr_data.eq((partial + (1 << (2 * lg - 1))) >> (2 * lg))]
        return m
