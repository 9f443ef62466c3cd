"""Video output without a frame buffer: the pipeline's pixel stream is shown on a raster whose
frames are locked to the stream's, then TMDS encoded (three 10-bit symbols per pixel clock).

* The stream goes through a FIFO. On the last line of the vertical blanking the timing
  generator repeats that line (hsync keeps running) until the FIFO holds the first pixel of a
  frame and `prefill` pixels in all, so each displayed frame is one input frame, started a few
  lines after it. After `max_hold` repeated lines without a frame the raster runs anyway and
  shows an empty frame (the fill colour), so a display keeps its sync with no input.
* During the picture the FIFO is read one pixel per clock. A frame whose first pixel is not
  `first`, whose lines do not end with `last` where the raster's do, or that runs the FIFO dry
  is *broken*: from there to the end of the frame the fill colour is shown and the rest of the
  stream's frame is discarded; pixels left over are dropped in the blanking until the next
  `first`. Only pipeline output is ever shown, so a broken frame never shows a raw pixel.
* Blue carries HSYNC (c0) and VSYNC (c1) in its control tokens (DVI 1.0 section 3.3.1).

`LATENCY` clocks separate the raster position (`x`, `y` of the timing generator) from its
symbols.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .tmds import TMDSEncoder
from .types import Pixel, pixel_stream
from .video_timing import TimingGenerator, VideoTiming

__all__ = ["DVIFramer"]


class DVIFramer(wiring.Component):
    """Stream in (`i`), TMDS symbols out (`tmds_b`, `tmds_g`, `tmds_r`), status."""

    #: Register stage after the FIFO read plus the encoder's latency.
    LATENCY = 1 + TMDSEncoder.LATENCY

    def __init__(self, timing: VideoTiming, fifo_depth=4096, prefill=None, max_hold=None,
                 fill=(0, 0, 0)):
        self.timing = timing
        self.fifo_depth = fifo_depth
        self.prefill = timing.h_active if prefill is None else prefill
        if not 1 <= self.prefill <= fifo_depth:
            raise ValueError(f"prefill must be in 1..{fifo_depth}, not {self.prefill!r}")
        self.max_hold = timing.v_total if max_hold is None else max_hold
        self.fill = fill
        super().__init__({
            "i": In(pixel_stream()),
            "tmds_b": Out(10), "tmds_g": Out(10), "tmds_r": Out(10),
            "frames_shown": Out(32), "frames_empty": Out(32), "frames_broken": Out(32),
            "frame_start": Out(1),      # one clock before the first pixel of a raster frame
        })

    def elaborate(self, platform):
        m = Module()
        t = self.timing
        m.submodules.timing = tg = TimingGenerator(t, start_in_blanking=True)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=Pixel.as_shape().size,
                                                    depth=self.fifo_depth)
        m.d.comb += [fifo.w_data.eq(self.i.payload), fifo.w_en.eq(self.i.valid),
                     self.i.ready.eq(fifo.w_rdy)]
        head = Signal(Pixel)
        m.d.comb += head.eq(fifo.r_data)

        ready_to_start = fifo.r_rdy & head.first & (fifo.r_level >= self.prefill)
        held_lines = Signal(range(self.max_hold + 1))
        give_up = held_lines == self.max_hold
        m.d.comb += tg.hold.eq(~ready_to_start & ~give_up)
        line_end = tg.x == t.h_total - 1
        with m.If(tg.at_frame_end & line_end):
            with m.If(tg.hold):
                m.d.sync += held_lines.eq(held_lines + 1)
            with m.Else():
                m.d.sync += held_lines.eq(0)

        # The frame being shown: `live` if it started with a frame in the FIFO and nothing
        # broke it yet.
        live = Signal()
        with m.If(tg.frame_start):
            m.d.sync += live.eq(ready_to_start)
            with m.If(ready_to_start):
                m.d.sync += self.frames_shown.eq(self.frames_shown + 1)
            with m.Else():
                m.d.sync += self.frames_empty.eq(self.frames_empty + 1)
        m.d.comb += self.frame_start.eq(tg.frame_start)

        at_first = (tg.x == 0) & (tg.y == 0)
        at_line_end = tg.x == t.h_active - 1
        good = fifo.r_rdy & (head.first == at_first) & (head.last == at_line_end)
        show = Signal()
        with m.If(tg.de):
            with m.If(live):
                with m.If(good):
                    m.d.comb += [fifo.r_en.eq(1), show.eq(1)]
                with m.Else():
                    m.d.sync += [live.eq(0), self.frames_broken.eq(self.frames_broken + 1)]
            with m.Else():
                # Discard what is left of a broken frame (never the next frame's first).
                m.d.comb += fifo.r_en.eq(fifo.r_rdy & ~head.first)
        with m.Elif(~tg.frame_start):
            # Blanking: drop leftovers until a frame's first pixel is at the head.
            m.d.comb += fifo.r_en.eq(fifo.r_rdy & ~head.first & ~(tg.y < t.v_active))

        # Register the pixel with its syncs, then encode.
        de1, hs1, vs1 = Signal(), Signal(), Signal()
        r1, g1, b1 = Signal(8), Signal(8), Signal(8)
        fr, fg, fb = self.fill
        m.d.sync += [de1.eq(tg.de), hs1.eq(tg.hsync), vs1.eq(tg.vsync),
                     r1.eq(fr), g1.eq(fg), b1.eq(fb)]
        with m.If(show):
            m.d.sync += [r1.eq(head.r), g1.eq(head.g), b1.eq(head.b)]
        for name, value in (("b", b1), ("g", g1), ("r", r1)):
            enc = TMDSEncoder()
            m.submodules[f"enc_{name}"] = enc
            m.d.comb += [enc.data.eq(value), enc.de.eq(de1),
                         getattr(self, f"tmds_{name}").eq(enc.symbol)]
            if name == "b":
                m.d.comb += enc.ctrl.eq(hs1 | (vs1 << 1))
        return m
