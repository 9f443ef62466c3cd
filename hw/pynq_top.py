"""The PYNQ overlay's IP: the pipeline (`Anonymizer`) behind the AXI DMA's two streams.

    AXI DMA MM2S -> s_axis (32-bit words, tlast at the frame's end) -> markers from a pixel
    counter -> Anonymizer -> output framing (exactly WIDTH x HEIGHT words, tlast on the last)
    -> m_axis -> AXI DMA S2MM;  AXI4-Lite -> the pipeline's registers + the wrapper's (DMA_*)

One frame is one DMA transfer each way. A pixel is one 32-bit word, bytes B, G, R, 0 (byte 0 =
B): the memory order of an OpenCV BGRA frame. The DMA's streams carry no frame or line
markers, so `first` and `last` are regenerated from a pixel counter and the size the overlay is
built for (the detector is elaborated for one size: WIDTH and HEIGHT read it back, read-only).

A transfer whose length is not WIDTH x HEIGHT words is a protocol error (DMA_STATUS,
DMA_ERRORS):

* *short* (tlast before the frame's last pixel): the pixels sent go through the pipeline as a
  cut frame (which the pipeline itself does not vouch for), and the output frame is completed
  with fill pixels so that the receive transfer still ends, with tlast, after WIDTH x HEIGHT
  words;
* *long* (no tlast on the frame's last pixel): the frame is closed at its last pixel and the
  excess is accepted and dropped up to its tlast.

Either way the output **fails closed**: from the moment the error is known, every output pixel
is the fill colour (COLOR) up to the end of the second frame after the faulty one (the frame
whose mask could use the faulty frame's analysis). Pixels of the faulty frame that left the
chip before its end was seen are not recalled: there is no frame buffer. The host (the `pynq`
backend) therefore checks DMA_ERRORS after every frame and never returns such a frame.
"""

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .anonymizer import Anonymizer
from .axil import AxiLiteSlave, axil_ports
from .regs import RegisterFile, anonymizer_register_map, bus_signature, dma_register_map

__all__ = ["ObscuraPynq", "dma_stream_ports", "FILL_FRAMES_AFTER", "RECORD_DEPTH"]

#: Frames after a faulty one that are filled entirely: frame k + 2 is masked with the analysis
#: of frame k, the faulty one.
FILL_FRAMES_AFTER = 2
#: Input transfers whose output has not ended yet, at most (the input waits beyond that).
RECORD_DEPTH = 8


def dma_stream_ports():
    """Signature members of the AXI DMA-facing streams: `s_axis_*` in, `m_axis_*` out, 32-bit
    `tdata` (one pixel per word), `tkeep`, `tlast` at the end of a frame."""
    members = {}
    for side, i, o in (("s_axis", In, Out), ("m_axis", Out, In)):
        members.update({
            f"{side}_tdata": i(32), f"{side}_tkeep": i(4), f"{side}_tlast": i(1),
            f"{side}_tvalid": i(1), f"{side}_tready": o(1),
        })
    return members


class _Bridge(wiring.Component):
    """Everything but the AXI4-Lite slave (which must finish the write that resets this)."""

    def __init__(self, core, width, height):
        self.core, self.width, self.height = core, width, height
        members = dma_stream_ports()
        members["bus"] = In(bus_signature())
        members["soft_reset"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        W, H = self.width, self.height
        N = W * H
        m.submodules.core = core = self.core
        m.submodules.regs = regs = RegisterFile(dma_register_map(W, H))
        inputs = regs.inputs

        # Register bus: both decoders see every access; each reads 0 where it decodes nothing.
        for port in (core.reg_addr, regs.bus.addr):
            m.d.comb += port.eq(self.bus.addr)
        m.d.comb += [core.reg_wdata.eq(self.bus.wdata), core.reg_we.eq(self.bus.we),
                     regs.bus.wdata.eq(self.bus.wdata), regs.bus.we.eq(self.bus.we),
                     self.bus.rdata.eq(core.reg_rdata | regs.bus.rdata),
                     self.soft_reset.eq(regs.values["DMA_CONTROL"][0])]
        # The fill colour: a copy of the pipeline's COLOR register, taken from the bus.
        color_reg = next(r for r in anonymizer_register_map() if r.name == "COLOR")
        color = Signal(24, init=color_reg.reset_value())
        with m.If(self.bus.we & (self.bus.addr == color_reg.offset)):
            m.d.sync += color.eq(self.bus.wdata[:24])

        # One record per input transfer: how many of its pixels entered the pipeline.
        m.submodules.records = rec = SyncFIFOBuffered(width=N.bit_length(), depth=RECORD_DEPTH)

        # ---- input: markers from a pixel counter, length check against the frame size
        n = Signal(range(N))
        x = Signal(range(W))
        drain = Signal()
        short, long_, length_error = Signal(), Signal(), Signal()
        frames, errors = Signal(32), Signal(32)
        err_event = Signal()
        m.d.comb += [
            core.s_axis_tdata.eq(self.s_axis_tdata[:24]),
            core.s_axis_tuser.eq(n == 0), core.s_axis_tlast.eq(x == W - 1),
            core.s_axis_tvalid.eq(self.s_axis_tvalid & ~drain & rec.w_rdy),
            self.s_axis_tready.eq(drain | (core.s_axis_tready & rec.w_rdy)),
        ]
        beat = self.s_axis_tvalid & self.s_axis_tready
        with m.If(beat & drain):
            with m.If(self.s_axis_tlast):
                m.d.sync += [drain.eq(0), frames.eq(frames + 1)]
        with m.Elif(beat):
            with m.If(self.s_axis_tlast | (n == N - 1)):
                m.d.sync += [n.eq(0), x.eq(0)]
                m.d.comb += [rec.w_en.eq(1), rec.w_data.eq(n + 1)]
                with m.If(self.s_axis_tlast):
                    m.d.sync += frames.eq(frames + 1)
                with m.If(self.s_axis_tlast & (n != N - 1)):
                    m.d.comb += err_event.eq(1)
                    m.d.sync += [short.eq(1), long_.eq(0), length_error.eq(1)]
                with m.Elif(~self.s_axis_tlast):
                    # The DMA puts tlast on a transfer's last word: this one goes on.
                    m.d.comb += err_event.eq(1)
                    m.d.sync += [drain.eq(1), short.eq(0), long_.eq(1), length_error.eq(1)]
                with m.Else():
                    m.d.sync += [short.eq(0), long_.eq(0), length_error.eq(0)]
            with m.Else():
                m.d.sync += [n.eq(n + 1), x.eq(x + 1)]
                with m.If(x == W - 1):
                    m.d.sync += x.eq(0)
        with m.If(err_event):
            m.d.sync += errors.eq(errors + 1)

        # ---- output: exactly N words per frame, tlast on the last; fill after an error
        c = Signal(range(N))
        pad = rec.r_rdy & (c >= rec.r_data)
        fill_frame = Signal()
        fill_left = Signal(range(RECORD_DEPTH + FILL_FRAMES_AFTER + 2))
        filled = Signal(32)
        fill = fill_frame | err_event
        m.d.comb += [
            self.m_axis_tvalid.eq(pad | core.m_axis_tvalid),
            core.m_axis_tready.eq(self.m_axis_tready & ~pad),
            self.m_axis_tlast.eq(c == N - 1), self.m_axis_tkeep.eq(0xF),
        ]
        fill_rgb = Cat(color[16:24], color[8:16], color[0:8])      # COLOR is r, g, b: B first
        word = Signal(32)
        m.d.comb += word.eq(Cat(core.m_axis_tdata[:24], Const(0, 8)))
        with m.If(pad | fill):
            m.d.comb += word.eq(Cat(fill_rgb, Const(0, 8)))
        # AXI4-Stream: a word offered and not taken stays as it is, even when an error or a
        # COLOR write changes what the next word would be.
        stalled = Signal()
        held = Signal(32)
        m.d.sync += [stalled.eq(self.m_axis_tvalid & ~self.m_axis_tready),
                     held.eq(self.m_axis_tdata)]
        m.d.comb += self.m_axis_tdata.eq(Mux(stalled, held, word))
        out_beat = self.m_axis_tvalid & self.m_axis_tready
        with m.If(out_beat):
            with m.If(c == N - 1):
                m.d.sync += c.eq(0)
                m.d.comb += rec.r_en.eq(1)
                m.d.sync += [fill_frame.eq(fill_left != 0)]
                with m.If(fill_left != 0):
                    m.d.sync += fill_left.eq(fill_left - 1)
                with m.If(fill):
                    m.d.sync += filled.eq(filled + 1)
            with m.Else():
                m.d.sync += c.eq(c + 1)
        with m.If(err_event):
            # Fill the rest of the frame going out now and every frame up to the faulty one's
            # second successor (the records in flight tell how far the output lags).
            m.d.sync += fill_frame.eq(1)
            with m.If(rec.level + FILL_FRAMES_AFTER > fill_left):
                m.d.sync += fill_left.eq(rec.level + FILL_FRAMES_AFTER)

        m.d.comb += [
            inputs["WIDTH"].eq(W), inputs["HEIGHT"].eq(H),
            inputs["DMA_STATUS"].eq(Cat(length_error, short, long_, (n != 0) | drain,
                                        fill_frame)),
            inputs["DMA_FRAMES"].eq(frames), inputs["DMA_ERRORS"].eq(errors),
            inputs["DMA_FILLED"].eq(filled),
        ]
        return m


class ObscuraPynq(wiring.Component):
    """The overlay's IP: `s_axis_*` / `m_axis_*` to the AXI DMA (32-bit words, tlast per frame),
    `s_axil_*` for the registers (`regs.pynq_register_map`); `clk`, `rst` (active high).

    `width` x `height` is the frame size, fixed at elaboration like the detector's; the other
    arguments are `Anonymizer`'s.
    """

    def __init__(self, width=1280, height=720, *args, **kwargs):
        if not (isinstance(width, int) and isinstance(height, int)
                and 1 <= width <= 4095 and 1 <= height <= 4095):
            raise ValueError(f"width and height must be integers in 1..4095, not "
                             f"{width!r} x {height!r}")
        self.width, self.height = width, height
        self.core = Anonymizer(width, height, *args, **kwargs)
        members = dma_stream_ports()
        members.update(axil_ports("s_axil"))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.axil = axil = AxiLiteSlave()
        bridge = _Bridge(self.core, self.width, self.height)
        soft_reset = Signal()
        m.submodules.bridge = ResetInserter(soft_reset)(bridge)
        m.d.comb += soft_reset.eq(bridge.soft_reset)
        for name, member in self.signature.members.items():
            port = getattr(self, name)
            inner = getattr(axil if name.startswith("s_axil") else bridge, name)
            if member.flow == In:
                m.d.comb += inner.eq(port)
            else:
                m.d.comb += port.eq(inner)
        wiring.connect(m, axil.bus, bridge.bus)
        return m
