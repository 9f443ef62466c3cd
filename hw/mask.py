"""The mask unit: mosaic / blur / solid fill inside boxes and privacy zones, one pixel per clock.

`mask_model.py` is the specification; this file is its hardware. Structure (docs/architecture.md):

    in ─► S0 checks ─► S1-S3 block-mean accumulation ─► delay ─► L0 span test + mean-store read
                                                                 ─► L1-L2 interpolation ─► out

* The span engine computes every region's x-span for a line while that line's first pixels walk
  through the delay stages, so no line of look-ahead and no frame start stall is needed.
* Each line carries a 1-bit tag selecting one of two span/context buffers; a line may start only
  when the buffer its tag selects has drained, so at most two lines are in flight.
* Block means of frame N are written to one half of the mean store while frame N reads the
  other half (frame N-1's means).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .mask_model import RECIP, SQRT_PROFILE
from .types import BLOCK_SIZES, COORD_BITS, Geometry, Mode, Pixel, Region, Shape, pixel_stream

__all__ = ["MaskUnit", "MaskControl", "MaskStatus", "Color", "ACCUM_STAGES", "LATE_STAGES",
           "ENGINE_LATENCY", "SPAN_SELECT_STAGES", "latency_cycles"]

#: Stages S1..S5 (block-mean accumulation) before the delay line.
ACCUM_STAGES = 5
#: Stages P1..P7 just before L0 that compute the mean-store read addresses.
PREP_STAGES = 7
#: Stages after the span test L0: L1 (OR, mean-store outputs registered), L2 (corner select),
#: L3 (horizontal products), L4 (sums), L5 (vertical products), L6 (sum and output select),
#: L7 (output register).
LATE_STAGES = 7
#: The output FIFO (Amaranth's SyncFIFOBuffered): a written pixel is readable 2 clocks later.
FIFO_LATENCY = 2
#: Clocks from a line's first pixel to the span engine's start.
ENGINE_START = 1
#: Span engine pipeline depth beyond one cycle per region (E0b, E1..E7 after E0).
ENGINE_LATENCY = 8
#: Stages between the selection of a line's spans (by its tag) and the span test L0: one, so
#: that the tag's fan-out to every region's span multiplexer ends in registers (the tag at L0
#: fanned out to the multiplexers in front of the comparators: the whole top's worst path at
#: 4595b87, 7.8 of its 14.6 ns routing from the tag).
SPAN_SELECT_STAGES = 1
#: Rows per block RAM of the mean store (ECP5 EBR: 2048 x 9).
SUB_DEPTH = 2048
#: Largest frame height (lines) below which a frame start waits for the previous frame to
#: drain: with fewer than three 32-line block rows, the previous frame's last line may still read
#: a mean-store row the new frame is overwriting.
SMALL_FRAME_LINES = 3 * max(BLOCK_SIZES)


def l0_stage(num_regions):
    """Return the (1-based) stage L0: a line's first pixel reaches it only after the engine,
    started when that pixel was accepted, has written the line's last span, and its spans have
    been selected (`SPAN_SELECT_STAGES`)."""
    return max(num_regions + ENGINE_START + ENGINE_LATENCY + SPAN_SELECT_STAGES + 1,
               ACCUM_STAGES + PREP_STAGES + 1)


def latency_cycles(num_regions):
    """Return the unit's pixel latency in clocks (input accepted to output valid)."""
    return l0_stage(num_regions) + LATE_STAGES + FIFO_LATENCY


class Color(data.Struct):
    r: 8
    g: 8
    b: 8


class MaskControl(data.Struct):
    """Run-time settings, latched at each frame's `first` pixel."""
    mode: Mode
    box_shape: Shape  # rectangle or inscribed ellipse, for boxes (zones are rectangles)
    block: 2        # 0: 8 px, 1: 16 px, 2 (and 3): 32 px
    color: Color    # solid fill, and the colour of every fail-closed pixel
    fail_closed: 1  # fill the whole frame: the pipeline cannot vouch for its detections


class MaskStatus(data.Struct):
    frame_ok: 1         # the current frame is vouched (geometry known, no error so far)
    means_valid: 1      # the current frame's regions use the previous frame's block means
    protocol_error: 1   # one-cycle pulse per protocol error
    errors: 16          # protocol errors since reset (wraps)
    frames: 16          # frame starts since reset (wraps)


def _ceil_log2(n):
    return max(1, (n - 1).bit_length())


class MaskUnit(wiring.Component):
    """Pixel stream in, anonymized pixel stream out; `boxes` and `zones` say where.

    Parameters: `geometry` (maximum frame size), `num_boxes` (tracker boxes, take the shape),
    `num_zones` (static privacy zones, always rectangles), `min_block` (the smallest block the
    block-mean store is sized for; a smaller `block` setting acts as `min_block`: 16 quarters
    the store, which a board short of block RAM needs at 1280x720).
    """

    def __init__(self, geometry=Geometry(), num_boxes=32, num_zones=8, min_block=BLOCK_SIZES[0]):
        if min_block not in BLOCK_SIZES:
            raise ValueError(f"min_block must be one of {BLOCK_SIZES}, not {min_block!r}")
        if not isinstance(geometry, Geometry):
            raise TypeError(f"geometry must be a Geometry, not {geometry!r}")
        for name, value in (("num_boxes", num_boxes), ("num_zones", num_zones)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        if num_boxes + num_zones == 0:
            raise ValueError("the mask unit needs at least one box or zone")
        self.geometry = geometry
        self.num_boxes = num_boxes
        self.num_zones = num_zones
        self.num_regions = num_boxes + num_zones
        self.min_block = min_block
        self.latency = latency_cycles(self.num_regions)
        super().__init__({
            "i": In(pixel_stream()),
            "o": Out(pixel_stream()),
            "control": In(MaskControl),
            "boxes": In(data.ArrayLayout(Region, max(num_boxes, 1))),
            "zones": In(data.ArrayLayout(Region, max(num_zones, 1))),
            "status": Out(MaskStatus),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        nreg = self.num_regions
        cw = COORD_BITS + 1                      # counters reach 4096
        mbx, mby = -(-g.max_width // self.min_block), -(-g.max_height // self.min_block)
        rb, cb = -(-mby // 2), -(-mbx // 2)      # rows / columns per parity bank
        bank_depth = 2 * rb * cb
        span_w = COORD_BITS + 1

        # ---------------------------------------------------------------- pipeline skeleton
        pix_layout = data.StructLayout({
            "valid": 1, "r": 8, "g": 8, "b": 8, "first": 1, "last": 1,
            "x": COORD_BITS, "y": COORD_BITS, "tag": 1, "tag_n": 1, "force": 1,
        })
        j = l0_stage(nreg)
        nstages = j + LATE_STAGES
        st = [Signal(pix_layout, name=f"s{n + 1}") for n in range(nstages)]
        s1, s5 = st[0], st[4]
        p1 = st[j - 1 - PREP_STAGES]             # P1: first address-preparation stage
        l0, l6, l_out = st[j - 1], st[j + 5], st[j + 6]
        # The pipeline never stalls: the output goes into a FIFO, and a pixel is accepted only
        # while the FIFO has room for every pixel in flight (credits). No clock enable fans out
        # from the output's ready to thousands of registers.
        adv = Const(1)
        fifo_depth = 1 << (nstages + 4).bit_length()
        m.submodules.out_fifo = out_fifo = SyncFIFOBuffered(width=Pixel.as_shape().size,
                                                            depth=fifo_depth)
        in_flight = Signal(range(fifo_depth + 1))
        room = Signal(init=1)
        m.d.sync += room.eq(in_flight + 1 < fifo_depth)   # registered: one cycle of slack
        accept = Signal()
        m.d.comb += accept.eq(self.i.valid & self.i.ready)

        # ---------------------------------------------------------------- frame state
        synced = Signal()
        err_in_frame = Signal()
        geom_known = Signal()
        w_exp = Signal(cw)
        h_exp = Signal(cw)
        w0 = Signal(cw)                          # width of line 0 of this frame
        w0_valid = Signal()
        consistent = Signal()                    # this frame's lines all have width w0
        x_next = Signal(cw)
        y_next = Signal(cw)
        cfg = Signal(MaskControl)                # latched at first
        means_valid = Signal()
        nbx_r = Signal(cw)
        nby_r = Signal(cw)
        fb = Signal()                            # mean-store half written by this frame
        tag = Signal()                           # tag of the line being accepted
        act_boxes = Signal(data.ArrayLayout(Region, max(self.num_boxes, 1)))  # latched at first
        act_zones = Signal(data.ArrayLayout(Region, max(self.num_zones, 1)))
        act_shape = Signal(Shape)

        p = self.i.payload
        is_first = p.first
        x = Signal(cw)
        y = Signal(cw)
        m.d.comb += [x.eq(Mux(is_first, 0, x_next)), y.eq(Mux(is_first, 0, y_next))]
        # `x_next == 0` and `y_next < SMALL_FRAME_LINES`, registered where x_next and y_next
        # are (timing: their comparisons sat in front of `i.ready`, and so in front of the
        # delay line's handshake: the whole top's worst path at 54e691b).
        x_zero = Signal(init=1)
        small = Signal(init=1)
        line_start = Signal()
        m.d.comb += line_start.eq(is_first | x_zero)

        prev_complete = Signal()
        m.d.comb += prev_complete.eq(synced & ~err_in_frame & x_zero & (y_next != 0) &
                                     (~geom_known | (y_next == h_exp)))
        self_complete = Signal()
        m.d.comb += self_complete.eq(synced & consistent & x_zero & (y_next != 0))

        # A `first` in the middle of a line cuts the frame before it; the new frame's pixels
        # would be masked in coordinates that no longer match the scene, so it is filled whole.
        # x_next != 0, kept as one flag so the wide compare stays off the error-check path.
        mid_line = Signal()                      # the last accepted pixel did not end a line
        cut_mid_line = Signal()
        m.d.comb += cut_mid_line.eq(synced & mid_line)
        eff_synced = Signal()
        eff_err = Signal()
        eff_geom = Signal()
        eff_w = Signal(cw)
        eff_h = Signal(cw)
        m.d.comb += [
            eff_synced.eq(synced | is_first),
            eff_err.eq(Mux(is_first, cut_mid_line, err_in_frame)),
            eff_geom.eq(geom_known | (is_first & self_complete)),
            eff_w.eq(Mux(is_first & self_complete, w0, w_exp)),
            eff_h.eq(Mux(is_first & self_complete, y_next, h_exp)),
        ]
        # The checks, written for timing: a first pixel is at (0, 0), so only a one-pixel line can
        # break the expectation there; any other pixel compares the registered counters with
        # registered limits (w0 - 1 and W - 1 are kept alongside w0 and W).
        w0m1 = Signal(cw)
        wexpm1 = Signal(cw)
        self_bad = Signal()
        m.d.comb += self_bad.eq(~is_first & (
            (x_next >= g.max_width) | (y_next >= g.max_height) |
            (w0_valid & ((x_next >= w0) | (p.last & (x_next != w0m1))))))
        first_w_is_1 = Mux(self_complete, w0m1 == 0, wexpm1 == 0)
        exp_bad = Signal()
        m.d.comb += exp_bad.eq(Mux(
            is_first, eff_geom & p.last & ~first_w_is_1,
            geom_known & ((x_next >= w_exp) | (p.last & (x_next != wexpm1)) |
                          (y_next >= h_exp))))
        bad = Signal()
        m.d.comb += bad.eq(~eff_synced | self_bad | exp_bad)
        new_err = Signal()
        m.d.comb += new_err.eq(eff_err | bad)
        err_at_first = Signal()
        m.d.comb += err_at_first.eq(is_first & synced & ~prev_complete & ~err_in_frame)
        err_here = Signal()
        m.d.comb += err_here.eq(bad & ~eff_err)

        # Settings seen by this pixel's frame (the new ones at first).
        eff_ctl = Signal(MaskControl)
        m.d.comb += eff_ctl.eq(Mux(is_first, self.control, cfg))
        kmin = self.min_block.bit_length() - 1          # block settings below act as min_block
        k_of = lambda ctl: Mux(ctl.block == 0, max(3, kmin),  # noqa: E731
                               Mux(ctl.block == 1, max(4, kmin), 5))
        eff_k = Signal(3)
        m.d.comb += eff_k.eq(k_of(eff_ctl))

        def ceil_shift(value, k):
            return Mux(k == 3, (value + 7) >> 3, Mux(k == 4, (value + 15) >> 4, (value + 31) >> 5))

        status = self.status
        # The error counter adds last cycle's events (keeps the adder off the check path).
        err_events = Signal(2)
        m.d.sync += [err_events.eq(Mux(accept, err_here + err_at_first, 0)),
                     status.errors.eq(status.errors + err_events)]
        m.d.comb += status.protocol_error.eq(accept & (err_here | err_at_first))
        m.d.comb += [status.frame_ok.eq(geom_known & ~err_in_frame),
                     status.means_valid.eq(means_valid)]

        x_new, y_new = Mux(p.last, 0, x + 1), Mux(p.last, y + 1, y)
        with m.If(accept):
            m.d.sync += [
                err_in_frame.eq(new_err),
                mid_line.eq(~p.last),
                x_next.eq(x_new),
                y_next.eq(y_new),
                x_zero.eq(x_new[:cw] == 0),
                small.eq(y_new[:cw] < SMALL_FRAME_LINES),
            ]
            with m.If(is_first):
                m.d.sync += [
                    synced.eq(1),
                    geom_known.eq(geom_known | self_complete),
                    cfg.eq(self.control),
                    means_valid.eq(prev_complete & (k_of(self.control) == k_of(cfg))),
                    fb.eq(~fb),
                    status.frames.eq(status.frames + 1),
                ]
                with m.If(self_complete):
                    m.d.sync += [w_exp.eq(w0), wexpm1.eq(w0m1), h_exp.eq(y_next)]
            frame_consistent = Mux(is_first, 1, consistent)
            m.d.sync += consistent.eq(frame_consistent & ~self_bad)
            with m.If(is_first):
                m.d.sync += w0_valid.eq(0)
            with m.If((y == 0) & p.last & ~self_bad & frame_consistent & eff_synced):
                m.d.sync += [w0.eq(x + 1), w0m1.eq(x), w0_valid.eq(1)]

        # ---------------------------------------------------------------- span engine
        # Per tag: the x-span of every region on that line, and the line's read context.
        ctx_layout = data.StructLayout({
            "mode": Mode, "k": 3, "color": Color, "means_valid": 1,
            "nbx": cw, "nby": cw, "fb_r": 1,
        })
        span_layout = data.StructLayout({"lo": span_w, "hi": span_w})
        spans = [[Signal(span_layout, name=f"span{t}_{r}") for r in range(nreg)] for t in (0, 1)]
        ctx = [Signal(ctx_layout, name=f"ctx{t}") for t in (0, 1)]
        cnt = [Signal(range(nstages + 2), name=f"inflight{t}") for t in (0, 1)]

        eng_busy = Signal()
        eng_idx = Signal(range(nreg + ENGINE_LATENCY))
        eng_y = Signal(COORD_BITS)
        eng_buf = Signal()
        eng_idle = Signal()

        # Frame start waits for a small previous frame to drain (see SMALL_FRAME_LINES).
        start_ok = Signal()
        m.d.comb += start_ok.eq((Mux(tag, cnt[0], cnt[1]) == 0) & eng_idle &
                                (~is_first | ~small | (Mux(tag, cnt[1], cnt[0]) == 0)))
        m.d.comb += self.i.ready.eq(room & (~line_start | start_ok))

        new_tag = Signal()
        m.d.comb += new_tag.eq(Mux(line_start, ~tag, tag))
        # The engine starts (and a frame's regions are latched) the cycle after the line's first
        # pixel is accepted: the thousands of region registers are not enabled by `accept`.
        eng_pending = Signal()
        latch_pending = Signal()
        eng_y_p = Signal(COORD_BITS)
        m.d.sync += [eng_pending.eq(accept & line_start), latch_pending.eq(accept & is_first)]
        with m.If(accept & line_start):
            m.d.sync += [tag.eq(~tag), eng_y_p.eq(y), eng_buf.eq(~tag)]
        with m.If(eng_pending):
            m.d.sync += [eng_busy.eq(1), eng_idx.eq(0), eng_y.eq(eng_y_p)]
        with m.If(latch_pending):
            m.d.sync += [act_boxes.eq(self.boxes), act_zones.eq(self.zones),
                         act_shape.eq(self.control.box_shape)]
        # A line's context is written the cycle after its first pixel is accepted (the block
        # counts of a new frame come from an add and shift of the learned geometry); P1, the
        # first stage that reads it, is several stages later.
        lc = Signal(data.StructLayout({"valid": 1, "first": 1, "tag": 1, "w": cw, "h": cw,
                                       "ctx": ctx_layout}))
        m.d.sync += lc.valid.eq(accept & line_start)
        with m.If(accept & line_start):
            m.d.sync += [
                lc.first.eq(is_first), lc.tag.eq(~tag), lc.w.eq(eff_w), lc.h.eq(eff_h),
                lc.ctx.mode.eq(eff_ctl.mode), lc.ctx.k.eq(eff_k), lc.ctx.color.eq(eff_ctl.color),
                lc.ctx.means_valid.eq(Mux(is_first,
                                          prev_complete & (k_of(self.control) == k_of(cfg)),
                                          means_valid)),
                lc.ctx.fb_r.eq(Mux(is_first, fb, ~fb)),
            ]
        line_ctx = Signal(ctx_layout)
        m.d.comb += [
            line_ctx.eq(lc.ctx),
            line_ctx.nbx.eq(Mux(lc.first, ceil_shift(lc.w, lc.ctx.k), nbx_r)),
            line_ctx.nby.eq(Mux(lc.first, ceil_shift(lc.h, lc.ctx.k), nby_r)),
        ]
        with m.If(lc.valid):
            for t in (0, 1):
                with m.If(lc.tag == t):
                    m.d.sync += ctx[t].eq(line_ctx)
            with m.If(lc.first):
                m.d.sync += [nbx_r.eq(line_ctx.nbx), nby_r.eq(line_ctx.nby)]

        # E0 select a region; E1 its geometry, RECIP[h] read; E2 register the ROM output;
        # E3 t = (v * RECIP[h]) >> 8; E4 the profile read; E5 register it;
        # E6 hw = w * SQRT_PROFILE[t] >> 8; E7 the span. ROM outputs are registered before
        # any multiply: an EBR's clock-to-out plus a multiplier does not fit 10 ns.
        regions = Array([act_boxes[i].as_value() for i in range(self.num_boxes)] +
                        [act_zones[i].as_value() for i in range(self.num_zones)])
        m.submodules.recip_rom_eng = recip_rom_eng = memory.Memory(
            shape=unsigned(17), depth=len(RECIP), init=[int(v) for v in RECIP])
        m.submodules.sqrt_rom = sqrt_rom = memory.Memory(
            shape=unsigned(9), depth=256, init=[int(v) for v in SQRT_PROFILE])
        rp_recip_eng = recip_rom_eng.read_port()
        rp_sqrt = sqrt_rom.read_port()
        idx_shape = range(nreg + 1)

        # The region select is a two-level mux (8:1 per group of eight, registered, then the
        # group): one 40:1 mux of 49 bits does not fit a cycle.
        sel_layout = data.StructLayout({"valid": 1, "idx": idx_shape, "ell": 1})
        e0b = Signal(sel_layout)
        ngroups = -(-nreg // 8)
        group_regs = [Signal(Region, name=f"region_group{g}") for g in range(ngroups)]
        m.d.sync += [
            e0b.valid.eq(eng_busy & (eng_idx < nreg)), e0b.idx.eq(eng_idx),
            e0b.ell.eq((eng_idx < self.num_boxes) & (act_shape == Shape.ELLIPSE)),
        ]
        # Each group selects with its own copy of `eng_idx[:3]`, a counter of its own (Yosys
        # merges identical flip-flops, `keep` or not): one select net to every group's
        # multiplexers was the whole top's worst path at 17ad64b (12.4 ns of routing).
        group_sel = [Signal(3, name=f"region_sel{g}") for g in range(ngroups)]
        with m.If(eng_pending):
            m.d.sync += [sel.eq(0) for sel in group_sel]
        with m.Elif(eng_busy):
            m.d.sync += [sel.eq(sel + 1) for sel in group_sel]
        for g in range(ngroups):
            members = Array(list(regions)[8 * g:8 * g + 8])
            m.d.sync += group_regs[g].eq(members[group_sel[g]])
        e1 = Signal(data.StructLayout({"valid": 1, "idx": idx_shape, "ell": 1,
                                       "region": Region}))
        m.d.sync += [
            e1.valid.eq(e0b.valid), e1.idx.eq(e0b.idx), e1.ell.eq(e0b.ell),
            e1.region.eq(Array(group_regs)[e0b.idx >> 3]),
        ]
        geo_layout = data.StructLayout({"valid": 1, "idx": idx_shape, "ell": 1, "inside": 1,
                                        "v": COORD_BITS + 1, "w": COORD_BITS,
                                        "cx2": COORD_BITS + 1})
        reg1 = e1.region
        sum_y = Signal(COORD_BITS + 1)
        two_y1 = Signal(COORD_BITS + 2)
        m.d.comb += [
            sum_y.eq(reg1.y0 + reg1.y1),
            two_y1.eq((eng_y << 1) + 1),
            rp_recip_eng.addr.eq(reg1.y1 - reg1.y0),
        ]
        e2 = Signal(geo_layout)
        m.d.sync += [
            e2.valid.eq(e1.valid), e2.idx.eq(e1.idx), e2.ell.eq(e1.ell),
            e2.inside.eq(reg1.enable & (reg1.x0 < reg1.x1) & (reg1.y0 < reg1.y1) &
                         (reg1.y0 <= eng_y) & (eng_y < reg1.y1)),
            e2.v.eq(Mux(two_y1 >= sum_y, two_y1 - sum_y, sum_y - two_y1)),
            e2.w.eq(reg1.x1 - reg1.x0), e2.cx2.eq(reg1.x0 + reg1.x1),
        ]
        e3, e4, e5, e6, e7 = (Signal(geo_layout, name=f"e{n}") for n in range(3, 8))
        recip3 = Signal(17)
        t4 = Signal(8)
        prof6 = Signal(9)
        hw7 = Signal(COORD_BITS + 1)
        m.d.sync += [e3.eq(e2), recip3.eq(rp_recip_eng.data),
                     e4.eq(e3), t4.eq((e3.v * recip3)[8:16]),
                     e5.eq(e4),
                     e6.eq(e5), prof6.eq(rp_sqrt.data),
                     e7.eq(e6), hw7.eq((e6.w * Mux(e6.ell, prof6, 256)) >> 8)]
        m.d.comb += rp_sqrt.addr.eq(t4)
        lo = Signal(span_w)
        hi = Signal(span_w)
        m.d.comb += [lo.eq((e7.cx2 - hw7) >> 1), hi.eq((e7.cx2 + hw7 + 1) >> 1)]
        with m.If(e7.valid):
            for t in (0, 1):
                for r in range(nreg):
                    with m.If((eng_buf == t) & (e7.idx == r)):
                        m.d.sync += [spans[t][r].lo.eq(Mux(e7.inside, lo, 0)),
                                     spans[t][r].hi.eq(Mux(e7.inside, hi, 0))]
        with m.If(eng_busy & ~eng_pending):
            m.d.sync += eng_idx.eq(eng_idx + 1)
            with m.If(eng_idx == nreg + ENGINE_LATENCY - 1):
                m.d.sync += eng_busy.eq(0)
        m.d.comb += eng_idle.eq(~eng_busy & ~eng_pending)

        # ---------------------------------------------------------------- in-flight counts
        for t in (0, 1):
            inc = accept & (new_tag == t)
            dec = adv & l0.valid & (l0.tag == t)
            m.d.sync += cnt[t].eq(cnt[t] + inc - dec)

        # ---------------------------------------------------------------- stage advance
        s0 = Signal(pix_layout)
        m.d.comb += [
            s0.valid.eq(accept),
            s0.r.eq(p.r), s0.g.eq(p.g), s0.b.eq(p.b), s0.first.eq(p.first), s0.last.eq(p.last),
            s0.x.eq(x), s0.y.eq(y), s0.tag.eq(new_tag), s0.tag_n.eq(~new_tag),
            s0.force.eq(new_err | ~eff_geom | eff_ctl.fail_closed),
        ]
        with m.If(adv):
            m.d.sync += st[0].eq(s0)
            for a, b in zip(st[:-1], st[1:]):
                if b is not l_out:               # the output register is written below
                    m.d.sync += b.eq(a)

        # ---------------------------------------------------------------- S0-S5: block means
        acc_layout = data.StructLayout({"en": 1, "blk_start": 1, "row_start": 1, "blk_end": 1,
                                        "xin": 5, "yin": 5, "bx": range(max(mbx, 2)),
                                        "by": range(max(mby, 2)), "fb": 1})
        a0 = Signal(acc_layout)
        bmask = Signal(6)
        m.d.comb += bmask.eq((Const(1, 6) << eff_k) - 1)
        m.d.comb += [
            a0.en.eq(~new_err & eff_synced),
            a0.xin.eq(x & bmask), a0.yin.eq(y & bmask),
            a0.blk_start.eq((x & bmask) == 0),
            a0.row_start.eq((y & bmask) == 0),
            a0.blk_end.eq(((x & bmask) == bmask) | p.last),
            a0.bx.eq(x >> eff_k),
            a0.by.eq(y >> eff_k),
            a0.fb.eq(Mux(is_first, ~fb, fb)),
        ]
        acc = [a0] + [Signal(acc_layout, name=f"acc{n}") for n in range(1, ACCUM_STAGES + 1)]
        with m.If(adv):
            m.d.sync += [b.eq(a) for a, b in zip(acc[:-1], acc[1:])]
        a1, a5 = acc[1], acc[5]

        # S1: this line's run of the block; S2: plus the rows above; S3: RECIP[n] read;
        # S4: the product; S5: the mean written to the store. col_acc is read as a pixel enters
        # S1 and written as a block's last pixel leaves S2; only block-end pixels use what they
        # read, and the next block end of the same column is a line later: at least two pixels
        # later, since one-pixel lines each wait for the span engine (>= 8 clocks).
        sum_layout = data.ArrayLayout(unsigned(18), 3)
        m.submodules.col_acc = col_acc = memory.Memory(shape=sum_layout, depth=mbx, init=[])
        col_w = col_acc.write_port()
        col_r = col_acc.read_port(transparent_for=(col_w,))
        m.submodules.recip_rom_acc = recip_rom_acc = memory.Memory(
            shape=unsigned(17), depth=1025, init=[int(v) for v in RECIP[:1025]])
        rp_recip_acc = recip_rom_acc.read_port()
        a2, a3 = acc[2], acc[3]
        npix2 = Signal(11)
        m.d.comb += [
            col_r.addr.eq(a0.bx), col_r.en.eq(adv),
            rp_recip_acc.addr.eq(npix2), rp_recip_acc.en.eq(adv),
        ]
        with m.If(adv):                            # the block's pixel count so far
            m.d.sync += npix2.eq((a1.xin + 1) * (a1.yin + 1))
        s2 = st[1]
        line_acc = Signal(sum_layout)
        line_sum = Signal(sum_layout)
        line_sum2 = Signal(sum_layout)
        col2 = Signal(sum_layout)
        total = Signal(sum_layout)
        for c, name in enumerate("rgb"):
            m.d.comb += [
                line_sum[c].eq(Mux(a1.blk_start, 0, line_acc[c]) + getattr(s1, name)),
                total[c].eq(line_sum2[c] + Mux(a2.row_start, 0, col2[c])),
            ]
        with m.If(adv & s1.valid):
            m.d.sync += line_acc.eq(line_sum)
        with m.If(adv):
            m.d.sync += [line_sum2.eq(line_sum), col2.eq(col_r.data)]
        m.d.comb += [col_w.addr.eq(a2.bx), col_w.data.eq(total),
                     col_w.en.eq(adv & s2.valid & a2.blk_end)]
        total3 = Signal(sum_layout)
        total4 = Signal(sum_layout)
        recip4 = Signal(17)
        mean5 = Signal(Color)
        with m.If(adv):
            m.d.sync += [total3.eq(total), total4.eq(total3), recip4.eq(rp_recip_acc.data)]
            for c, name in enumerate("rgb"):
                m.d.sync += getattr(mean5, name).eq((total4[c] * recip4) >> 16)

        # The write address is prepared over S3-S4 (a multiply by the row stride, two adds).
        addr_w = max(1, (bank_depth - 1).bit_length())
        wrow4 = Signal(addr_w)
        waddr5 = Signal(addr_w)
        with m.If(adv):
            m.d.sync += [wrow4.eq(Mux(a3.fb, rb * cb, 0) + _const_mul(a3.by >> 1, cb)),
                         waddr5.eq(wrow4 + (acc[4].bx >> 1))]
        # Each bank is split by address into memories of at most SUB_DEPTH rows whose outputs
        # are registered before they are selected: a block RAM's clock-to-out plus the output
        # multiplexer of a deeper memory does not fit a 10 ns cycle.
        nsub = -(-bank_depth // SUB_DEPTH)
        sub_bits = max(1, (min(bank_depth, SUB_DEPTH) - 1).bit_length())
        rps = [[[None] * nsub for _ in (0, 1)] for _ in (0, 1)]
        for pr in (0, 1):
            for pc in (0, 1):
                for sub in range(nsub):
                    depth = min(SUB_DEPTH, bank_depth - sub * SUB_DEPTH)
                    mem = memory.Memory(shape=Color, depth=depth, init=[])
                    m.submodules[f"means_{pr}{pc}_{sub}"] = mem
                    wp = mem.write_port()
                    rps[pr][pc][sub] = mem.read_port(transparent_for=(wp,))
                    m.d.comb += [
                        wp.addr.eq(waddr5[:sub_bits]),
                        wp.data.eq(mean5),
                        wp.en.eq(adv & s5.valid & a5.en & a5.blk_end &
                                 (a5.by[0] == pr) & (a5.bx[0] == pc) &
                                 ((waddr5 >> sub_bits) == sub)),
                    ]

        # ---------------------------------------------------------------- P1-P7: read addresses
        # The mean-store reads happen at L0, after the writes at S5, so a frame always reads
        # its predecessor's finished means (see SMALL_FRAME_LINES for the one exception).
        c1 = Signal(ctx_layout)
        m.d.comb += c1.eq(Mux(p1.tag, ctx[1], ctx[0]))
        late_layout = data.StructLayout({
            "k": 3, "mode": Mode, "color": Color, "means_valid": 1, "blur": 1,
            "nbx": cw, "nby": cw, "fb_r": 1})
        # P1: offset by half a block (blur); P2: block index and weight; P3: the edge test;
        # P4: clamp at the frame edges (as `effect_colours` in the model) and the neighbour.
        ctx_reg = [Signal(late_layout, name=f"prep_ctx{n}") for n in range(2, 6)]
        pa = Signal(data.StructLayout({"x": COORD_BITS, "y": COORD_BITS, "nx": 1, "ny": 1}))
        pb_l = data.StructLayout({"b0": COORD_BITS, "wgt": 5, "neg": 1})
        pb = Signal(data.StructLayout({"x": pb_l, "y": pb_l}))
        pc_l = data.StructLayout({"b0": COORD_BITS, "b0p1": COORD_BITS, "cm1": COORD_BITS,
                                  "wgt": 5, "neg": 1, "last": 1})
        pc = Signal(data.StructLayout({"x": pc_l, "y": pc_l}))
        side = data.StructLayout({"b0": COORD_BITS, "b1": COORD_BITS, "wgt": 6})
        prep3 = Signal(data.StructLayout({"ctx": late_layout, "y": side, "x": side}))
        half = Mux(c1.k == 3, 4, Mux(c1.k == 4, 8, 16))
        blur1 = c1.mode == Mode.BLUR
        with m.If(adv):
            m.d.sync += [
                ctx_reg[0].k.eq(c1.k), ctx_reg[0].mode.eq(c1.mode),
                ctx_reg[0].color.eq(c1.color), ctx_reg[0].means_valid.eq(c1.means_valid),
                ctx_reg[0].blur.eq(blur1), ctx_reg[0].nbx.eq(c1.nbx),
                ctx_reg[0].nby.eq(c1.nby), ctx_reg[0].fb_r.eq(c1.fb_r),
            ]
            m.d.sync += [b.eq(a) for a, b in zip(ctx_reg[:-1], ctx_reg[1:])]
            for name, coord in (("x", p1.x), ("y", p1.y)):
                m.d.sync += [getattr(pa, name).eq(Mux(blur1, coord - half, coord)),
                             getattr(pa, "n" + name).eq(blur1 & (coord < half))]
            c2 = ctx_reg[0]
            for name in ("x", "y"):
                src = getattr(pa, name)
                out = getattr(pb, name)
                m.d.sync += [out.b0.eq(src >> c2.k), out.neg.eq(getattr(pa, "n" + name)),
                             out.wgt.eq(Mux(c2.blur, src & ((Const(1, 6) << c2.k) - 1), 0))]
            c3 = ctx_reg[1]
            for name, count in (("x", c3.nbx), ("y", c3.nby)):
                ax, out = getattr(pb, name), getattr(pc, name)
                m.d.sync += [out.b0.eq(ax.b0), out.b0p1.eq(ax.b0 + 1), out.cm1.eq(count - 1),
                             out.wgt.eq(ax.wgt), out.neg.eq(ax.neg),
                             out.last.eq(c3.blur & (ax.b0 + 1 >= count))]
            m.d.sync += prep3.ctx.eq(ctx_reg[2])
            for name in ("x", "y"):
                ax, out = getattr(pc, name), getattr(prep3, name)
                zero_w = ax.neg | ax.last
                b0 = Mux(ax.neg, 0, Mux(ax.last, ax.cm1, ax.b0))
                m.d.sync += [out.b0.eq(b0), out.wgt.eq(Mux(zero_w, 0, ax.wgt)),
                             out.b1.eq(Mux(~zero_w & (ax.wgt != 0), ax.b0p1, b0 ^ 1))]

        # P5: per bank, the row and column; P6: the row base (row * stride, shifts and adds);
        # P7: the address.
        bank_layout = data.ArrayLayout(unsigned(addr_w), 4)
        row_half = Signal(bank_layout)
        col_half = Signal(bank_layout)
        fb4 = Signal()
        row_base = Signal(bank_layout)
        col_half5 = Signal(bank_layout)
        addr6 = Signal(bank_layout)
        prep4 = Signal(data.StructLayout({"ctx": late_layout, "py": 1, "px": 1, "wx": 6,
                                          "wy": 6, "iwx": 6, "iwy": 6}))
        prep5 = Signal.like(prep4)
        prep6 = Signal.like(prep4)
        with m.If(adv):
            m.d.sync += [prep4.ctx.eq(prep3.ctx), prep4.py.eq(prep3.y.b0[0]),
                         prep4.px.eq(prep3.x.b0[0]), prep4.wx.eq(prep3.x.wgt),
                         prep4.wy.eq(prep3.y.wgt),
                         # B - w, ready before the multipliers that use it
                         prep4.iwx.eq((Const(1, 6) << prep3.ctx.k) - prep3.x.wgt),
                         prep4.iwy.eq((Const(1, 6) << prep3.ctx.k) - prep3.y.wgt),
                         prep5.eq(prep4), prep6.eq(prep5), fb4.eq(prep3.ctx.fb_r)]
            for pr in (0, 1):
                for pc in (0, 1):
                    n = 2 * pr + pc
                    row = Mux(prep3.y.b0[0] == pr, prep3.y.b0, prep3.y.b1)
                    col = Mux(prep3.x.b0[0] == pc, prep3.x.b0, prep3.x.b1)
                    m.d.sync += [row_half[n].eq(row >> 1), col_half[n].eq(col >> 1),
                                 row_base[n].eq(Mux(fb4, rb * cb, 0) +
                                                _const_mul(row_half[n], cb)),
                                 col_half5[n].eq(col_half[n]),
                                 addr6[n].eq(row_base[n] + col_half5[n])]
        for pr in (0, 1):
            for pc in (0, 1):
                for rp in rps[pr][pc]:
                    m.d.comb += [rp.addr.eq(addr6[2 * pr + pc][:sub_bits]), rp.en.eq(adv)]

        # ---------------------------------------------------------------- L0: span test
        hits1 = Signal(nreg)
        l_pre = st[j - 1 - SPAN_SELECT_STAGES]   # the stage before L0 selects its line's spans
        for r in range(nreg):
            sp = Signal(span_layout, name=f"span_l0_{r}")
            # Half the regions select with the tag, half with its inverted copy `tag_n`
            # (carried alongside: a copy of the same polarity would be merged by Yosys): one
            # tag net to every region's span register was a worst path at 74022cc (13.3 ns).
            tag = l_pre.tag if r % 2 == 0 else ~l_pre.tag_n
            with m.If(adv):
                m.d.sync += [sp.eq(Mux(tag, spans[1][r], spans[0][r])),
                             hits1[r].eq((l0.x >= sp.lo) & (l0.x < sp.hi))]

        # ---------------------------------------------------------------- L1-L6: interpolation
        q_layout = data.StructLayout({"ctx": late_layout, "py": 1, "px": 1, "wx": 6, "wy": 6,
                                      "iwx": 6, "iwy": 6, "hit": 1})
        q1, q2, q3, q4, q5, q6 = (Signal(q_layout, name=f"q{n}") for n in range(1, 7))
        with m.If(adv):
            m.d.sync += [q1.ctx.eq(prep6.ctx), q1.py.eq(prep6.py), q1.px.eq(prep6.px),
                         q1.wx.eq(prep6.wx), q1.wy.eq(prep6.wy),
                         q1.iwx.eq(prep6.iwx), q1.iwy.eq(prep6.iwy),
                         q2.eq(q1), q2.hit.eq(hits1.any()), q3.eq(q2), q4.eq(q3), q5.eq(q4),
                         q6.eq(q5)]

        # Block RAM outputs go straight into registers: its clock-to-out leaves no time for
        # logic in the same cycle.
        subs2 = Signal(data.ArrayLayout(data.ArrayLayout(Color, nsub), 4))
        sub_sel1 = Signal(data.ArrayLayout(range(max(nsub, 2)), 4))
        sub_sel2 = Signal.like(sub_sel1)
        with m.If(adv):
            m.d.sync += [subs2[2 * pr + pc][sub].eq(rps[pr][pc][sub].data)
                         for pr in (0, 1) for pc in (0, 1) for sub in range(nsub)]
            m.d.sync += [sub_sel1[n].eq(addr6[n] >> sub_bits) for n in range(4)]
            m.d.sync += sub_sel2.eq(sub_sel1)
        banks2 = [Signal(Color, name=f"bank{n}_l2") for n in range(4)]
        for n in range(4):
            m.d.comb += banks2[n].eq(Array([subs2[n][sub].as_value() for sub in range(nsub)])
                                     [sub_sel2[n]])

        def pick(py, px):
            sel = Signal(Color)
            m.d.comb += sel.eq(Mux(py, Mux(px, banks2[3], banks2[2]),
                                   Mux(px, banks2[1], banks2[0])))
            return sel

        corners = Signal(data.ArrayLayout(Color, 4))        # c00, c01, c10, c11 at L3
        with m.If(adv):
            m.d.sync += [corners[0].eq(pick(q2.py, q2.px)), corners[1].eq(pick(q2.py, ~q2.px)),
                         corners[2].eq(pick(~q2.py, q2.px)),
                         corners[3].eq(pick(~q2.py, ~q2.px))]
        hprod3 = Signal(data.ArrayLayout(data.ArrayLayout(unsigned(14), 4), 3))
        top4 = Signal(data.ArrayLayout(unsigned(14), 3))
        bot4 = Signal(data.ArrayLayout(unsigned(14), 3))
        ptop5 = Signal(data.ArrayLayout(unsigned(20), 3))
        pbot5 = Signal(data.ArrayLayout(unsigned(20), 3))
        with m.If(adv):
            for c, name in enumerate("rgb"):
                weights = (q3.iwx, q3.wx, q3.iwx, q3.wx)
                m.d.sync += [hprod3[c][i].eq(getattr(corners[i], name) * weights[i])
                             for i in range(4)]
                m.d.sync += [
                    top4[c].eq(hprod3[c][0] + hprod3[c][1]),
                    bot4[c].eq(hprod3[c][2] + hprod3[c][3]),
                    ptop5[c].eq(top4[c] * q5.iwy),
                    pbot5[c].eq(bot4[c] * q5.wy),
                ]
        interp = Signal(Color)
        k5 = q6.ctx.k
        for c, name in enumerate("rgb"):
            total5 = Signal(21, name=f"interp_{name}")
            m.d.comb += [total5.eq(ptop5[c] + pbot5[c] + ((Const(1, 21) << (k5 << 1)) >> 1)),
                         getattr(interp, name).eq(total5 >> (k5 << 1))]

        use_fill = Signal()
        m.d.comb += use_fill.eq(l6.force |
                                (q6.hit & ((q6.ctx.mode == Mode.SOLID) | ~q6.ctx.means_valid)))
        out = Signal(pix_layout)
        m.d.comb += out.eq(l6)
        with m.If(use_fill):
            m.d.comb += [out.r.eq(q6.ctx.color.r), out.g.eq(q6.ctx.color.g),
                         out.b.eq(q6.ctx.color.b)]
        with m.Elif(q6.hit):
            m.d.comb += [out.r.eq(interp.r), out.g.eq(interp.g), out.b.eq(interp.b)]
        with m.If(adv):
            m.d.sync += l_out.eq(out)
        m.d.comb += [
            out_fifo.w_en.eq(l_out.valid),
            out_fifo.w_data.eq(Cat(l_out.r, l_out.g, l_out.b, l_out.first, l_out.last)),
            self.o.valid.eq(out_fifo.r_rdy),
            self.o.payload.eq(out_fifo.r_data),
            out_fifo.r_en.eq(self.o.ready),
        ]
        popped = Signal()
        m.d.comb += popped.eq(out_fifo.r_rdy & self.o.ready)
        m.d.sync += in_flight.eq(in_flight + accept - popped)
        return m


def _const_mul(value, constant):
    """Return value * constant as a sum of shifted copies (adders, not a DSP block)."""
    terms = [value << i for i in range(constant.bit_length()) if constant >> i & 1]
    total = terms[0] if terms else Const(0)
    for t in terms[1:]:
        total = total + t
    return total


def _or(terms):
    """Return a balanced OR of 1-bit terms (keeps the logic depth logarithmic)."""
    while len(terms) > 1:
        terms = [terms[i] | terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]
