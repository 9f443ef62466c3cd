"""The face-window detector: luma/downscale front end, double-buffered base image, cascade
engine, grouping, and a record stream of detections (docs/architecture.md, docs/detector.md).

Every `every`-th frame from reset (frames 0, P, 2P, ... for `every` = P; every frame by
default) is analysed: its base image is analysed while the frames after it are written into the
other buffer. When the next frame due for analysis ends while an analysis is still running,
that analysis is abandoned (engine and grouper reset) and its end record says `overrun`: its
boxes may be missing, so the pipeline must fail closed. A malformed frame due for analysis, or
one of another size than the detector was built for, is not analysed (`bad_input`). P > 1 gives
an analysis P frame periods (the ULX3S board analyses every fourth frame at 720p30).

Output: per analysed frame, zero or more box records then one end record, in frame order.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .axis import axis_ports
from .cascade import Cascade, CascadeError, load_cascade
from .cascade_program import build_program
from .detector_engine import CascadeEngine
from .detector_frontend import LumaDownscale
from .detector_model import SCALE_FRAC, DetectorParams, pyramid_levels
from .grouper import Grouper
from .types import COORD_BITS, Pixel

__all__ = ["Detector", "DetectorTop", "DetRecord", "CORNERS_PER_CLOCK"]

#: Integral corners the engine reads a clock by default: 8 (four luma ring copies); 6 or 4
#: need fewer block RAMs and more clocks (`bench/engine_model.py`, docs/architecture.md).
CORNERS_PER_CLOCK = 8


class DetRecord(data.Struct):
    """A box (half-open, input pixels) or, with `end`, the end of a frame's results."""
    x0: COORD_BITS
    y0: COORD_BITS
    x1: COORD_BITS
    y1: COORD_BITS
    end: 1
    analysed: 1      # end: every window of the frame was evaluated and grouped
    overrun: 1       # end: abandoned, the next frame arrived first
    bad_input: 1     # end: malformed or wrong-size frame, not analysed
    overflow: 1      # end: grouping ran out of clusters (some windows were not grouped)


class Detector(wiring.Component):
    """Ports: `valid`/`pixel` video tap (never stalls); `o` stream of `DetRecord`;
    `min_neighbors`, `threshold_offset` (latched when an analysis starts); per-frame
    counters latched at each end record (`frame_weak`, `frame_windows`, `frame_cycles`);
    running totals (`frames`, `overruns`, `bad_frames`);
    `trace_*` one event per window visited (verification). `every`: analyse every this many
    frames (1: every frame). `corners_per_clock`: 2, 4, 6 or 8, the engine's width (the
    results are the same; the clocks and block RAMs are not)."""

    def __init__(self, width=1280, height=720, cascade="frontalface_default",
                 params=None, corners_per_clock=CORNERS_PER_CLOCK, grouper_lut_ram=False,
                 every=1):
        params = params or DetectorParams()
        if not 1 <= every <= 8:
            raise ValueError(f"every must be 1..8 frames, not {every!r}")
        self.every = every
        self.cascade = cascade if isinstance(cascade, Cascade) else load_cascade(cascade)
        self.width, self.height, self.params = width, height, params
        self.base_w, self.base_h = width // params.downscale, height // params.downscale
        self.levels = pyramid_levels(self.base_w, self.base_h, self.cascade, params)
        if not self.levels:
            raise CascadeError(f"a {width}x{height} frame downscaled by {params.downscale} is "
                               f"not larger than the {self.cascade.width}x"
                               f"{self.cascade.height} window: nothing to analyse")
        self.stride = self.base_w + 1           # integral ring row: the zero column + W
        if corners_per_clock not in (2, 4, 6, 8):
            raise ValueError(f"corners_per_clock must be 2, 4, 6 or 8, not "
                             f"{corners_per_clock!r}")
        self.program = build_program(self.cascade, self.stride, group=corners_per_clock)
        self.grouper_lut_ram = grouper_lut_ram
        self._engine = CascadeEngine(self.base_w, self.base_h, self.levels, self.program)
        super().__init__({
            "valid": In(1), "pixel": In(Pixel),
            "o": Out(stream.Signature(DetRecord)),
            "min_neighbors": In(8, init=params.min_neighbors),
            "threshold_offset": In(signed(8), init=params.threshold_offset),
            "frame_weak": Out(32), "frame_windows": Out(32), "frame_cycles": Out(32),
            "frames": Out(32), "overruns": Out(32), "bad_frames": Out(32), "busy": Out(1),
            "trace_valid": Out(1), "trace_level": Out(self._engine.level_bits),
            "trace_x": Out(COORD_BITS), "trace_y": Out(COORD_BITS),
            "trace_stages": Out(self._engine.stage_bits),
        })

    @staticmethod
    def levels_for(width, height, cascade="frontalface_default", params=None):
        """The pyramid levels a detector built for `width` x `height` scans."""
        params = params or DetectorParams()
        cas = cascade if isinstance(cascade, Cascade) else load_cascade(cascade)
        return pyramid_levels(width // params.downscale, height // params.downscale, cas, params)

    def elaborate(self, platform):
        m = Module()
        cas, d = self.cascade, self.params.downscale
        # An abandoned analysis: `abort` records it at once; the engine and grouper are reset a
        # clock later (`abort_q`: a registered reset, it reaches thousands of flip-flops), and
        # whatever they put out in that clock is ignored.
        abort, abort_q = Signal(), Signal()
        m.d.sync += abort_q.eq(abort)
        m.submodules.frontend = fe = LumaDownscale(self.width, self.height, d)
        m.submodules.engine = engine = ResetInserter(abort_q)(self._engine)
        m.submodules.grouper = grouper = ResetInserter(abort_q)(Grouper(self.params.max_clusters,
                                                                          self.grouper_lut_ram))
        m.d.comb += [fe.valid.eq(self.valid), fe.pixel.eq(self.pixel),
                     engine.wr_en.eq(fe.wr_en), engine.wr_x.eq(fe.wr_x),
                     engine.wr_y.eq(fe.wr_y), engine.wr_data.eq(fe.wr_data),
                     grouper.min_neighbors.eq(self.min_neighbors),
                     engine.thr_offset.eq(self.threshold_offset)]
        for name in ("valid", "level", "x", "y", "stages"):
            m.d.comb += getattr(self, f"trace_{name}").eq(getattr(engine, f"trace_{name}"))

        # Raw windows to base pixels: round(v * F) per level.
        def per_level(fn):
            vals = [fn(f) for f, _, _, _ in self.levels]
            return Array(Const(v, max(1, max(vals).bit_length())) for v in vals)

        def round_q(v, f):
            return (v * f + (1 << (SCALE_FRAC - 1))) >> SCALE_FRAC

        # Two clocks (timing): the level's constants are looked up and registered with the
        # window, then scaled (multiplier, adder); a lookup in front of the multiplier was
        # one of the top's deepest paths (9.5 LUT levels). The end of the analysis is delayed
        # alike so the grouper still sees every raw window before `finish`. The engine checks
        # for room (two more) before each window, and its windows are more than two clocks
        # apart, so at most one raw window is in flight when it checks.
        f_a = Signal(range(max(f for f, *_ in self.levels) + 1))
        x_a, y_a, w_a, h_a = (Signal(COORD_BITS, name=n) for n in ("x_a", "y_a", "w_a", "h_a"))
        valid_a, finish_a = Signal(), Signal()
        m.d.sync += [valid_a.eq(engine.raw_valid), finish_a.eq(engine.done),
                     f_a.eq(per_level(lambda f: f)[engine.raw_level]),
                     w_a.eq(per_level(lambda f: round_q(cas.width, f))[engine.raw_level]),
                     h_a.eq(per_level(lambda f: round_q(cas.height, f))[engine.raw_level]),
                     x_a.eq(engine.raw_x), y_a.eq(engine.raw_y)]
        raw = grouper.raw.payload
        raw_valid, finish = Signal(), Signal()
        m.d.sync += [raw_valid.eq(valid_a), finish.eq(finish_a),
                     raw.x.eq(round_q(x_a, f_a)), raw.y.eq(round_q(y_a, f_a)),
                     raw.w.eq(w_a), raw.h.eq(h_a)]
        m.d.comb += [grouper.raw.valid.eq(raw_valid), engine.raw_ready.eq(grouper.raw_room),
                     grouper.finish.eq(finish)]
        # Nothing of an abandoned analysis reaches the next: what the engine put out up to the
        # abort's clock is cleared while the grouper is reset (`abort_q`), and a window or end
        # that reaches the grouper in that clock is lost to its reset. `abort` itself (decoded
        # from the grouper's state) into these clears was the whole top's worst path at
        # 65e579a (12.7 ns, seed 1).
        with m.If(abort_q):
            m.d.sync += [valid_a.eq(0), finish_a.eq(0), raw_valid.eq(0), finish.eq(0)]

        # Double buffer and the frame's life: start, finish, abandon.
        wbuf = Signal()
        start, start_q = Signal(), Signal()   # the engine starts after any reset (`abort_q`)
        analysing = Signal()
        m.d.comb += [engine.wr_buf.eq(wbuf), engine.start.eq(start_q),
                     engine.start_buf.eq(~wbuf), self.busy.eq(analysing)]
        m.d.sync += [start.eq(0), start_q.eq(start)]
        cycles = Signal(32)
        with m.If(analysing):
            m.d.sync += cycles.eq(cycles + 1)

        m.submodules.ends = ends = SyncFIFOBuffered(width=DetRecord.as_shape().size, depth=4)
        # The record's flags are separate signals assigned to it in one place: Verilator
        # mis-orders a signal whose bits are driven from several processes.
        end_rec = Signal(DetRecord)
        e_analysed, e_overrun, e_bad, e_overflow = Signal(), Signal(), Signal(), Signal()
        bad_pending = Signal()            # a bad frame's end record, after any overrun record
        m.d.comb += [end_rec.eq(Cat(Const(0, 48), 1, e_analysed, e_overrun, e_bad, e_overflow)),
                     ends.w_data.eq(end_rec)]
        latch = [self.frame_weak.eq(engine.weak), self.frame_windows.eq(engine.windows),
                 self.frame_cycles.eq(cycles)]
        # `due`: the frame ending now is one to analyse (frames 0, P, 2P, ... from reset).
        if self.every == 1:
            due = Const(1)
        else:
            phase = Signal(range(self.every))
            due = phase == 0
            with m.If(fe.frame_end):
                m.d.sync += phase.eq(Mux(phase == self.every - 1, 0, phase + 1))
        frame_due = fe.frame_end & due
        overrun_end = frame_due & analysing & ~grouper.done
        done_end = grouper.done & analysing & ~abort_q
        with m.If(frame_due):
            with m.If(overrun_end):
                # The next frame is here and this one is not finished: abandon it.
                m.d.comb += [abort.eq(1), ends.w_en.eq(1), e_overrun.eq(1)]
                m.d.sync += [self.overruns.eq(self.overruns + 1), analysing.eq(0)] + latch
            with m.If(fe.frame_ok):
                m.d.sync += [start.eq(1), wbuf.eq(~wbuf), analysing.eq(1), cycles.eq(0)]
            with m.Else():
                m.d.sync += [self.bad_frames.eq(self.bad_frames + 1), bad_pending.eq(1)]
        with m.If(done_end):
            m.d.comb += [ends.w_en.eq(1), e_analysed.eq(1), e_overflow.eq(grouper.overflow != 0)]
            m.d.sync += [self.frames.eq(self.frames + 1)] + latch
            with m.If(~(frame_due & fe.frame_ok)):
                m.d.sync += analysing.eq(0)
        # A bad frame's end record follows the (possible) overrun record a clock later.
        with m.If(bad_pending & ~overrun_end & ~done_end):
            m.d.comb += [ends.w_en.eq(1), e_bad.eq(1)]
            m.d.sync += bad_pending.eq(0)

        # Output: end records first (they are older than any box still in the grouper).
        m.submodules.out = out = SyncFIFOBuffered(width=DetRecord.as_shape().size, depth=16)
        box = Signal(DetRecord)
        gb = grouper.boxes.payload
        m.d.comb += [box.x0.eq(gb.x * d), box.y0.eq(gb.y * d), box.x1.eq((gb.x + gb.w) * d),
                     box.y1.eq((gb.y + gb.h) * d)]
        with m.If(ends.r_rdy):
            m.d.comb += [out.w_data.eq(ends.r_data), out.w_en.eq(1),
                         ends.r_en.eq(out.w_rdy)]
        with m.Else():
            m.d.comb += [out.w_data.eq(box), out.w_en.eq(grouper.boxes.valid & ~abort_q),
                         grouper.boxes.ready.eq(out.w_rdy & ~abort_q)]
        m.d.comb += [self.o.payload.eq(out.r_data), self.o.valid.eq(out.r_rdy),
                     out.r_en.eq(self.o.ready)]
        return m


class DetectorTop(wiring.Component):
    """`Detector` with AXI4-Stream names for the video tap (`s_axis_*`, tready always 1) and
    the records (`m_det_*`, tdata = the `DetRecord` bits), for Verilator and cocotb."""

    def __init__(self, **kwargs):
        self.det = Detector(**kwargs)
        video = {k: v for k, v in axis_ports().items() if k.startswith("s_axis")}
        members = dict(video)
        # Records padded to 64 bits (whole bytes for AXI-Stream tools), one per transfer.
        members.update({"m_det_tdata": Out(64), "m_det_tvalid": Out(1), "m_det_tlast": Out(1),
                         "m_det_tready": In(1),
                        "min_neighbors": In(8, init=self.det.params.min_neighbors)})
        for name, member in self.det.signature.members.items():
            if name.startswith(("frame_", "frames", "overruns", "bad_frames", "trace_", "busy")):
                members[name] = member
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.det = det = self.det
        p = det.pixel
        m.d.comb += [p.b.eq(self.s_axis_tdata[0:8]), p.g.eq(self.s_axis_tdata[8:16]),
                     p.r.eq(self.s_axis_tdata[16:24]), p.first.eq(self.s_axis_tuser),
                     p.last.eq(self.s_axis_tlast), det.valid.eq(self.s_axis_tvalid),
                     self.s_axis_tready.eq(1), det.min_neighbors.eq(self.min_neighbors),
                     self.m_det_tdata.eq(det.o.payload), self.m_det_tvalid.eq(det.o.valid),
                     self.m_det_tlast.eq(1),
                     det.o.ready.eq(self.m_det_tready)]
        for name in self.signature.members:
            if name.startswith(("frame_", "frames", "overruns", "bad_frames", "trace_", "busy")):
                m.d.comb += getattr(self, name).eq(getattr(det, name))
        return m
