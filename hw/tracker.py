"""The tracker in RTL: `tracker_model.TrackerModel`, step for step, and the publication of its
mask regions for exactly one frame.

Detector records of frame j (boxes, then an end record) are buffered; they are applied only
after the mask unit has started frame j + P (P = `every`: the detector analyses frames 0, P,
2P, ...; 1 by default), and only when the end record says the frame was fully analysed. The
tracker then publishes the regions for frames j + P + 1 .. j + 2P with a `vouched` flag and
the first frame they are for: the pipeline fails closed on any frame whose published regions
are not vouched or not for that frame (a late update can never unmask a frame). With P > 1 the
tracker steps once per analysis: velocities are per analysis, `hold` counts analyses.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .detector import DetRecord
from .tracker_model import MARGIN_MUL, VMAX
from .types import COORD_BITS, Region

__all__ = ["Tracker", "SlotState"]

C = COORD_BITS + 2          # signed working width of coordinates


class SlotState(data.Struct):
    valid: 1
    x0: COORD_BITS
    y0: COORD_BITS
    x1: COORD_BITS
    y1: COORD_BITS
    vx: signed(8)
    vy: signed(8)
    hits: 8
    age: 8


def _clamp(v, hi):
    return Mux(v < 0, 0, Mux(v > hi, hi, v))


class Tracker(wiring.Component):
    """Ports: `records` (detector output); `frame_start` pulse when the mask unit latches a
    frame, `latches` their count; `hold`, `margin`; `regions` and `pub_vouched`, `pub_frame`
    (what the mask uses: vouched only for frames `pub_frame` .. `pub_frame` + `every` - 1,
    `vouched_for`); `slot_addr` -> `slot_data` (read-back of one slot, combinational);
    `saturations` counter; `frames_done` results applied. `every`: the detector's analysis
    period in frames."""

    def __init__(self, width, height, num_slots=32, max_detections=32, every=1):
        self.width, self.height = width, height
        self.every = every
        self.num_slots, self.max_det = num_slots, max_detections
        super().__init__({
            "records": In(stream.Signature(DetRecord)),
            "frame_start": In(1),
            "hold": In(8, init=15), "margin": In(8, init=30),
            "regions": Out(data.ArrayLayout(Region, num_slots)),
            "pub_vouched": Out(1), "pub_frame": Out(8),
            "slot_addr": In(range(num_slots)), "slot_data": Out(SlotState),
            "saturations": Out(16), "frames_done": Out(8), "last_boxes": Out(8),
            "latches": Out(8),
        })

    def vouched_for(self, frame):
        """True when the published regions are vouched for `frame` (8-bit frame number)."""
        if self.every == 1:
            return self.pub_vouched & (self.pub_frame == frame)
        return self.pub_vouched & ((frame - self.pub_frame)[:8] < self.every)

    def elaborate(self, platform):
        m = Module()
        n = self.num_slots
        # The slots live in distributed (LUT) RAM, one write port and two asynchronous read
        # ports (the passes' and the read-back's), their valid bits in flip-flops beside it.
        # A slot that is not valid is all zeros (a freed slot is written as 0; see AGE), so a
        # read is the RAM's word masked by its valid bit, and a reset (valid bits only)
        # clears every slot at once. Timing: slots in flip-flops were read through 8:1
        # multiplexers of ~80 bits each, spread over the chip; their shared select was the whole
        # top's worst path at 1ccf388 (13.8 of 15.3 ns routing).
        m.submodules.slot_mem = smem = memory.Memory(shape=SlotState, depth=n, init=[])
        sw = smem.write_port()
        sr, sb = smem.read_port(domain="comb"), smem.read_port(domain="comb")
        valid = Signal(n)
        m.d.comb += [sb.addr.eq(self.slot_addr),
                     self.slot_data.eq(Mux(valid.bit_select(self.slot_addr, 1), sb.data, 0))]
        # One signal per region, driven onto the wide output port statically: a dynamically
        # indexed field of one wide vector simulates as a wide shift (slow in Verilator), a
        # case over separate signals does not.
        region_regs = [Signal(Region, name=f"region{i}") for i in range(n)]
        m.d.comb += [self.regions[i].eq(region_regs[i]) for i in range(n)]
        latches = self.latches           # frames the mask unit has started since reset
        with m.If(self.frame_start):
            m.d.sync += latches.eq(latches + 1)
        nres = self.frames_done          # results applied
        # The frame whose results come next (nres * every, modulo 256 like every frame count;
        # with every = 1 it is nres itself, and the hardware is what it was before `every`).
        res_frame = nres if self.every == 1 else Signal(8)

        # Boxes of the frame being collected, applied only once its end record is good.
        m.submodules.boxes = bmem = memory.Memory(shape=DetRecord, depth=self.max_det, init=[])
        bw, br = bmem.write_port(), bmem.read_port()
        count = Signal(range(self.max_det + 1))
        saturated = Signal()
        end_ok = Signal()
        k = Signal(range(self.max_det + 1))
        i = Signal(range(n + 1))
        d = Signal(DetRecord)
        best, best_area = Signal(range(n)), Signal(2 * C)
        found, free_found = Signal(), Signal()
        free, near = Signal(range(n)), Signal(range(n))
        near_dist, near_found = Signal(C + 2), Signal()
        matched = Signal(n)

        rec = self.records.payload
        # Frame res_frame + every has started in the mask. Both counters wrap at 256: their
        # distance is taken modulo 256 (a plain difference is signed and stayed negative for
        # 256 frames after the wrap, failing every frame closed from frame 256 on).
        # Registered (timing: the subtraction and comparison into the records' handshake and
        # the clock enables of the registers an end record loads were a seed's worst path at
        # 23abc1e, 13.4 ns), a clock late when a frame starts, and cleared as `res_frame`
        # moves on (PUBLISH's end) so it is never late the other way.
        ready_for_frame = Signal()
        m.d.sync += ready_for_frame.eq((latches - res_frame)[:8] >= self.every + 1)

        # Every pass over the slots is a pipeline, one slot a clock: the slot is read into
        # `cur` in two registered steps (the RAM's word into `got`, then `cur`), its arithmetic
        # is registered stage by stage, and a slot or region is written only from registers
        # (timing: no multiplexer, carry chain or multiplier in front of another). A pass
        # issues n slots, then drains.
        rd = Signal(range(n))                 # the slot read: `i`'s copy, or `sel`
        cur, got = Signal(SlotState), Signal(SlotState)
        m.d.comb += sr.addr.eq(rd)
        m.d.sync += [got.eq(Mux(valid.bit_select(rd, 1), sr.data, 0)), cur.eq(got)]
        issue = Signal()
        va = Signal()                                             # a slot in `got`
        v1, v2, v3, v4, v5 = (Signal(name=f"v{k}") for k in range(1, 6))  # slot in stage k
        ia = Signal(range(n))
        i1, i2, i3, i4, i5 = (Signal(range(n), name=f"i{k}") for k in range(1, 6))
        m.d.sync += [va.eq(issue), ia.eq(i), v1.eq(va), i1.eq(ia), v2.eq(v1), i2.eq(i1),
                     v3.eq(v2), i3.eq(i2), v4.eq(v3), i4.eq(i3), v5.eq(v4), i5.eq(i4)]

        def set_i(value):
            m.d.sync += [i.eq(value), rd.eq(value)]

        def issue_next():
            m.d.comb += issue.eq(1)
            set_i(i + 1)

        drained = ~issue & ~va & ~v1 & ~v2 & ~v3 & ~v4 & ~v5

        # Slot writes: the new state of the chosen slot (APPLY), an aged slot (AGE), from
        # registers: the address, the enable and which of the two it is.
        slot_we, aged_sel = Signal(), Signal()
        slot_wa = Signal(range(n))
        aged_out = Signal(SlotState)
        m.d.sync += slot_we.eq(0)

        # SCAN: 1 cur; 2 predicted box, centre sums; 3 overlap bounds, centre offsets;
        # 4 overlap sides, absolute offsets; 5 area (multiplier), distance; then compare. One
        # carry chain a stage: an adder, comparison and multiplexer in one clock was the
        # tracker's worst path once the read was split.
        px0, py0, px1, py1 = (Signal(signed(C), name=n) for n in ("px0", "py0", "px1", "py1"))
        csx, csy, dsx, dsy = (Signal(C, name=n) for n in ("csx", "csy", "dsx", "dsy"))
        lo_x, hi_x, lo_y, hi_y = (Signal(signed(C), name=n) for n in ("lo_x", "hi_x", "lo_y",
                                                                      "hi_y"))
        dxc, dyc = Signal(signed(C)), Signal(signed(C))
        adx, ady = Signal(C), Signal(C)
        ow, oh = Signal(signed(C + 1)), Signal(signed(C + 1))
        dist5 = Signal(C + 2)
        live2, live3, live4, live5 = (Signal(name=f"live{k}") for k in range(2, 6))
        free2, free3, free4, free5 = (Signal(name=f"free{k}") for k in range(2, 6))
        area5 = Signal(2 * C)
        m.d.sync += [
            px0.eq(cur.x0 + cur.vx), py0.eq(cur.y0 + cur.vy),
            px1.eq(cur.x1 + cur.vx), py1.eq(cur.y1 + cur.vy),
            csx.eq(cur.x0 + cur.x1), csy.eq(cur.y0 + cur.y1),
            dsx.eq(d.x0 + d.x1), dsy.eq(d.y0 + d.y1),
            free2.eq(~cur.valid), live2.eq(cur.valid & ~matched.bit_select(i1, 1)),
            lo_x.eq(Mux(px0 > d.x0, px0, d.x0)), hi_x.eq(Mux(px1 < d.x1, px1, d.x1)),
            lo_y.eq(Mux(py0 > d.y0, py0, d.y0)), hi_y.eq(Mux(py1 < d.y1, py1, d.y1)),
            dxc.eq(csx - dsx), dyc.eq(csy - dsy),
            free3.eq(free2), live3.eq(live2),
            ow.eq(hi_x - lo_x), oh.eq(hi_y - lo_y),
            adx.eq(Mux(dxc < 0, -dxc, dxc)), ady.eq(Mux(dyc < 0, -dyc, dyc)),
            free4.eq(free3), live4.eq(live3),
            area5.eq(Mux((ow > 0) & (oh > 0), ow * oh, 0)), dist5.eq(adx + ady),
            free5.eq(free4), live5.eq(live4)]

        # APPLY: the chosen slot's new state is computed into `new` from `cur`, then written.
        sel = Signal(range(n))
        new = Signal(SlotState)
        w_data = Signal(SlotState)
        m.d.comb += [w_data.eq(Mux(aged_sel, aged_out, new)),
                     sw.addr.eq(slot_wa), sw.data.eq(w_data), sw.en.eq(slot_we)]
        with m.If(slot_we):
            m.d.sync += valid.bit_select(slot_wa, 1).eq(w_data.valid)

        # A match's velocity, registered every clock in two stages (`d` and `cur` hold from
        # READ2 on): the difference, then its clamp. Timing: both and the case's multiplexer
        # in APPLY's one clock were the whole top's worst path on a seed at de2545f.
        vx, vy = d.x0 - cur.x0, d.y0 - cur.y0
        dvx, dvy = Signal(vx.shape(), name="dvx"), Signal(vy.shape(), name="dvy")
        cvx, cvy = Signal(signed(8), name="cvx"), Signal(signed(8), name="cvy")
        m.d.sync += [dvx.eq(vx), dvy.eq(vy),
                     cvx.eq(Mux(dvx > VMAX, VMAX, Mux(dvx < -VMAX, -VMAX, dvx))),
                     cvy.eq(Mux(dvy > VMAX, VMAX, Mux(dvy < -VMAX, -VMAX, dvy)))]

        # AGE: 1 cur; 2 moved and clamped (`aged`); 3 written, or freed when too old or gone.
        aged = Signal(SlotState)
        age_write = Signal()
        x0 = _clamp(cur.x0 + cur.vx, self.width)
        x1 = _clamp(cur.x1 + cur.vx, self.width)
        y0 = _clamp(cur.y0 + cur.vy, self.height)
        y1 = _clamp(cur.y1 + cur.vy, self.height)

        # PUBLISH: 1 cur; 2 size; 3 size times margin (multiplier); 4 times MARGIN_MUL
        # (multiplier); 5 the margins; 6 the region and its one-hot write enable, registered;
        # then the region register. Timing: each region's enable is a flip-flop of its own,
        # not a decode of the FSM state and slot index fanned out to every region (the routed
        # board's worst path, 18.6 of 19.8 ns routing); the size is registered before the
        # multiplier (`cur` across the chip, the subtraction and the DSP in one clock were a
        # seed's worst path at 4585ac2), and so is the product times MARGIN_MUL before the
        # speed is added (`hm` through the multiplier and the adder into `my`: a seed's worst
        # path at c7505c4, 14.6 ns).
        pub = [Signal(SlotState, name=f"pub{k}") for k in (2, 3, 4, 5)]
        ws, hs = Signal(signed(C), name="ws"), Signal(signed(C), name="hs")
        region_new, region_we = Signal(Region), Signal(n)
        m.d.sync += region_we.eq(0)
        for slot, region in enumerate(region_regs):
            with m.If(region_we[slot]):
                m.d.sync += region.eq(region_new)
        wm, hm = Signal(COORD_BITS + 8), Signal(COORD_BITS + 8)
        wk, hk = Signal(COORD_BITS + 8), Signal(COORD_BITS + 8)
        mx, my = Signal(COORD_BITS + 8), Signal(COORD_BITS + 8)
        ax = Mux(pub[2].vx < 0, -pub[2].vx, pub[2].vx)
        ay = Mux(pub[2].vy < 0, -pub[2].vy, pub[2].vy)

        with m.FSM(name="tracker"):
            with m.State("COLLECT"):
                m.d.comb += self.records.ready.eq(ready_for_frame)
                with m.If(self.records.valid & ready_for_frame):
                    with m.If(rec.end):
                        m.d.sync += [end_ok.eq(rec.analysed & ~rec.overflow), k.eq(0),
                                     matched.eq(0), self.last_boxes.eq(count)]
                        m.next = "END"
                    with m.Elif(count < self.max_det):
                        m.d.comb += [bw.addr.eq(count), bw.data.eq(rec), bw.en.eq(1)]
                        m.d.sync += count.eq(count + 1)
                    with m.Else():
                        m.d.sync += saturated.eq(1)
            with m.State("END"):
                set_i(0)
                with m.If(~end_ok):
                    m.next = "PUBLISH"
                with m.Elif(k == count):
                    m.next = "AGE"
                with m.Else():
                    m.d.comb += br.addr.eq(k)
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.sync += [d.eq(br.data), found.eq(0), free_found.eq(0),
                             near_found.eq(0), best_area.eq(0)]
                set_i(0)
                m.next = "SCAN"
            with m.State("SCAN"):
                # Best overlap with the predicted box, first free slot, nearest centre.
                with m.If(i < n):
                    issue_next()
                with m.If(v5):
                    with m.If(free5):
                        with m.If(~free_found):
                            m.d.sync += [free.eq(i5), free_found.eq(1)]
                    with m.Else():
                        with m.If(~near_found | (dist5 < near_dist)):
                            m.d.sync += [near.eq(i5), near_dist.eq(dist5), near_found.eq(1)]
                        with m.If(live5 & (area5 > best_area)):
                            m.d.sync += [best.eq(i5), best_area.eq(area5), found.eq(1)]
                with m.If((i == n) & drained):
                    chosen = Mux(found, best, Mux(free_found, free, near))
                    m.d.sync += [sel.eq(chosen), rd.eq(chosen)]
                    m.next = "READ"
            with m.State("READ"):             # `got` loads, then `cur`
                m.next = "READ2"
            with m.State("READ2"):
                m.next = "VEL"
            with m.State("VEL"):                # `dvx`, `dvy` load
                m.next = "VEL_CLAMP"
            with m.State("VEL_CLAMP"):          # `cvx`, `cvy` load
                m.next = "APPLY"
            with m.State("APPLY"):
                # `found`, `free_found` still say which of match, open or merge it is.
                with m.Switch(Cat(free_found, found)):
                    with m.Case("1-"):
                        m.d.sync += new.eq(cur)
                        m.d.sync += [
                            new.vx.eq(cvx), new.vy.eq(cvy),
                            new.x0.eq(d.x0), new.y0.eq(d.y0), new.x1.eq(d.x1),
                            new.y1.eq(d.y1),
                            new.hits.eq(Mux(cur.hits == 255, 255, cur.hits + 1)),
                            new.age.eq(0)]
                    with m.Case("01"):
                        m.d.sync += [new.valid.eq(1), new.x0.eq(d.x0), new.y0.eq(d.y0),
                                     new.x1.eq(d.x1), new.y1.eq(d.y1), new.vx.eq(0),
                                     new.vy.eq(0), new.hits.eq(1), new.age.eq(0)]
                    with m.Default():
                        m.d.sync += new.eq(cur)
                        m.d.sync += [new.x0.eq(Mux(d.x0 < cur.x0, d.x0, cur.x0)),
                                     new.y0.eq(Mux(d.y0 < cur.y0, d.y0, cur.y0)),
                                     new.x1.eq(Mux(d.x1 > cur.x1, d.x1, cur.x1)),
                                     new.y1.eq(Mux(d.y1 > cur.y1, d.y1, cur.y1)),
                                     new.age.eq(0)]
                m.d.sync += [slot_we.eq(1), slot_wa.eq(sel), aged_sel.eq(0)]
                m.next = "WRITE"
            with m.State("WRITE"):              # `new` is written at this clock's edge
                m.d.sync += [matched.bit_select(sel, 1).eq(1), k.eq(k + 1)]
                m.next = "END"
            with m.State("AGE"):
                with m.If(i < n):
                    issue_next()
                with m.If(v1):
                    age = Mux(cur.age == 255, 255, cur.age + 1)
                    m.d.sync += [aged.eq(cur), aged.x0.eq(x0), aged.x1.eq(x1), aged.y0.eq(y0),
                                 aged.y1.eq(y1), aged.age.eq(age),
                                 age_write.eq(cur.valid & ~matched.bit_select(i1, 1))]
                with m.If(v2 & age_write):
                    gone = (aged.age > self.hold) | (aged.x1 <= aged.x0) | (aged.y1 <= aged.y0)
                    m.d.sync += [aged_out.eq(Mux(gone, 0, aged)),
                                 slot_we.eq(1), slot_wa.eq(i2), aged_sel.eq(1)]
                with m.If((i == n) & drained):
                    set_i(0)
                    m.next = "PUBLISH"
            with m.State("PUBLISH"):
                # Regions with margins (one multiplier pair).
                with m.If(i < n):
                    issue_next()
                m.d.sync += [pub[0].eq(cur), pub[1].eq(pub[0]), pub[2].eq(pub[1]),
                             pub[3].eq(pub[2]),
                             ws.eq(cur.x1 - cur.x0), hs.eq(cur.y1 - cur.y0),
                             wm.eq(ws * self.margin), hm.eq(hs * self.margin),
                             wk.eq((wm * MARGIN_MUL) >> 16), hk.eq((hm * MARGIN_MUL) >> 16),
                             mx.eq(wk + (ax << 1)), my.eq(hk + (ay << 1))]
                with m.If(v5):
                    s = pub[3]
                    m.d.sync += region_new.eq(Cat(
                        Mux(s.x0 > mx, s.x0 - mx, 0)[:COORD_BITS],
                        Mux(s.y0 > my, s.y0 - my, 0)[:COORD_BITS],
                        Mux(s.x1 + mx > self.width, self.width, s.x1 + mx)[:COORD_BITS],
                        Mux(s.y1 + my > self.height, self.height, s.y1 + my)[:COORD_BITS],
                        s.valid))
                    m.d.sync += region_we.eq(Const(1, n) << i5)
                with m.If((i == n) & drained):
                    m.d.sync += [self.pub_vouched.eq(end_ok & ~saturated),
                                 self.pub_frame.eq(res_frame + self.every + 1),
                                 nres.eq(nres + 1), count.eq(0), saturated.eq(0),
                                 ready_for_frame.eq(0)]
                    if self.every > 1:
                        m.d.sync += res_frame.eq(res_frame + self.every)
                    with m.If(end_ok & saturated):
                        m.d.sync += self.saturations.eq(self.saturations + 1)
                    m.next = "COLLECT"
        return m
