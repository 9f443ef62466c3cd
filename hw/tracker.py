"""The tracker in RTL: `tracker_model.TrackerModel`, step for step, and the publication of its
mask regions for exactly one frame.

Detector records of frame j (boxes, then an end record) are buffered; they are applied only
after the mask unit has started frame j + 1, and only when the end record says the frame was
fully analysed. The tracker then publishes the regions for frame j + 2 with a `vouched` flag
and the frame number they are for: the pipeline fails closed on any frame whose published
regions are not vouched or not for that frame (a late update can never unmask a frame).
"""

from amaranth.hdl import Array, Module, Mux, Signal, signed
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
    (what the mask uses: vouched only for frame `pub_frame`); `slots` (read-back);
    `saturations` counter; `frames_done` results applied."""

    def __init__(self, width, height, num_slots=32, max_detections=32):
        self.width, self.height = width, height
        self.num_slots, self.max_det = num_slots, max_detections
        super().__init__({
            "records": In(stream.Signature(DetRecord)),
            "frame_start": In(1),
            "hold": In(8, init=15), "margin": In(8, init=30),
            "regions": Out(data.ArrayLayout(Region, num_slots)),
            "pub_vouched": Out(1), "pub_frame": Out(8),
            "slots": Out(data.ArrayLayout(SlotState, num_slots)),
            "saturations": Out(16), "frames_done": Out(8), "last_boxes": Out(8),
            "latches": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        n = self.num_slots
        # One signal per slot and per region, driven onto the wide output ports statically: a
        # dynamically indexed field of one wide vector simulates as a wide shift (slow in
        # Verilator), a case over separate signals does not.
        slot_regs = [Signal(SlotState, name=f"slot{i}") for i in range(n)]
        region_regs = [Signal(Region, name=f"region{i}") for i in range(n)]
        m.d.comb += [self.slots[i].eq(slot_regs[i]) for i in range(n)]
        m.d.comb += [self.regions[i].eq(region_regs[i]) for i in range(n)]
        slots = Array(slot_regs)
        regions = Array(region_regs)
        latches = self.latches           # frames the mask unit has started since reset
        with m.If(self.frame_start):
            m.d.sync += latches.eq(latches + 1)
        nres = self.frames_done          # results applied (frame j = nres is next)

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
        ready_for_frame = (latches - nres) >= 2   # frame nres + 1 has started in the mask

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
                with m.If(~end_ok):
                    m.d.sync += i.eq(0)
                    m.next = "PUBLISH"
                with m.Elif(k == count):
                    m.d.sync += i.eq(0)
                    m.next = "AGE"
                with m.Else():
                    m.d.comb += br.addr.eq(k)
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.sync += [d.eq(br.data), i.eq(0), found.eq(0), free_found.eq(0),
                             near_found.eq(0), best_area.eq(0)]
                m.next = "SCAN"
            with m.State("SCAN"):
                # One slot a clock: best overlap with the predicted box, first free slot,
                # nearest centre.
                s = slots[i]
                px0, py0 = s.x0 + s.vx, s.y0 + s.vy
                px1, py1 = s.x1 + s.vx, s.y1 + s.vy
                ow = Mux(px1 < d.x1, px1, d.x1) - Mux(px0 > d.x0, px0, d.x0)
                oh = Mux(py1 < d.y1, py1, d.y1) - Mux(py0 > d.y0, py0, d.y0)
                area = Mux((ow > 0) & (oh > 0), ow * oh, 0)
                dxc = (s.x0 + s.x1) - (d.x0 + d.x1)
                dyc = (s.y0 + s.y1) - (d.y0 + d.y1)
                dist = Mux(dxc < 0, -dxc, dxc) + Mux(dyc < 0, -dyc, dyc)
                with m.If(~s.valid):
                    with m.If(~free_found):
                        m.d.sync += [free.eq(i), free_found.eq(1)]
                with m.Else():
                    with m.If(~near_found | (dist < near_dist)):
                        m.d.sync += [near.eq(i), near_dist.eq(dist), near_found.eq(1)]
                    with m.If(~matched.bit_select(i, 1) & (area > best_area)):
                        m.d.sync += [best.eq(i), best_area.eq(area), found.eq(1)]
                m.d.sync += i.eq(i + 1)
                with m.If(i == n - 1):
                    m.next = "APPLY"
            with m.State("APPLY"):
                with m.If(found):
                    s = slots[best]
                    vx, vy = d.x0 - s.x0, d.y0 - s.y0
                    m.d.sync += [
                        s.vx.eq(Mux(vx > VMAX, VMAX, Mux(vx < -VMAX, -VMAX, vx))),
                        s.vy.eq(Mux(vy > VMAX, VMAX, Mux(vy < -VMAX, -VMAX, vy))),
                        s.x0.eq(d.x0), s.y0.eq(d.y0), s.x1.eq(d.x1), s.y1.eq(d.y1),
                        s.hits.eq(Mux(s.hits == 255, 255, s.hits + 1)), s.age.eq(0),
                        matched.bit_select(best, 1).eq(1)]
                with m.Elif(free_found):
                    s = slots[free]
                    m.d.sync += [s.valid.eq(1), s.x0.eq(d.x0), s.y0.eq(d.y0), s.x1.eq(d.x1),
                                 s.y1.eq(d.y1), s.vx.eq(0), s.vy.eq(0), s.hits.eq(1),
                                 s.age.eq(0), matched.bit_select(free, 1).eq(1)]
                with m.Else():
                    s = slots[near]
                    m.d.sync += [s.x0.eq(Mux(d.x0 < s.x0, d.x0, s.x0)),
                                 s.y0.eq(Mux(d.y0 < s.y0, d.y0, s.y0)),
                                 s.x1.eq(Mux(d.x1 > s.x1, d.x1, s.x1)),
                                 s.y1.eq(Mux(d.y1 > s.y1, d.y1, s.y1)),
                                 s.age.eq(0), matched.bit_select(near, 1).eq(1)]
                m.d.sync += k.eq(k + 1)
                m.next = "END"
            with m.State("AGE"):
                s = slots[i]
                with m.If(s.valid & ~matched.bit_select(i, 1)):
                    x0 = _clamp(s.x0 + s.vx, self.width)
                    x1 = _clamp(s.x1 + s.vx, self.width)
                    y0 = _clamp(s.y0 + s.vy, self.height)
                    y1 = _clamp(s.y1 + s.vy, self.height)
                    age = Mux(s.age == 255, 255, s.age + 1)
                    m.d.sync += [s.x0.eq(x0), s.x1.eq(x1), s.y0.eq(y0), s.y1.eq(y1),
                                 s.age.eq(age)]
                    with m.If((age > self.hold) | (x1 <= x0) | (y1 <= y0)):
                        m.d.sync += s.eq(0)
                m.d.sync += i.eq(i + 1)
                with m.If(i == n - 1):
                    m.d.sync += i.eq(0)
                    m.next = "PUBLISH"
            with m.State("PUBLISH"):
                # Regions with margins, one slot a clock (one multiplier pair).
                s = slots[i]
                r = regions[i]
                w, h = s.x1 - s.x0, s.y1 - s.y0
                ax = Mux(s.vx < 0, -s.vx, s.vx)
                ay = Mux(s.vy < 0, -s.vy, s.vy)
                mx = ((w * self.margin * MARGIN_MUL) >> 16) + (ax << 1)
                my = ((h * self.margin * MARGIN_MUL) >> 16) + (ay << 1)
                m.d.sync += [
                    r.x0.eq(Mux(s.x0 > mx, s.x0 - mx, 0)),
                    r.y0.eq(Mux(s.y0 > my, s.y0 - my, 0)),
                    r.x1.eq(Mux(s.x1 + mx > self.width, self.width, s.x1 + mx)),
                    r.y1.eq(Mux(s.y1 + my > self.height, self.height, s.y1 + my)),
                    r.enable.eq(s.valid), i.eq(i + 1)]
                with m.If(i == n - 1):
                    m.d.sync += [self.pub_vouched.eq(end_ok & ~saturated),
                                 self.pub_frame.eq(nres + 2), nres.eq(nres + 1),
                                 count.eq(0), saturated.eq(0)]
                    with m.If(end_ok & saturated):
                        m.d.sync += self.saturations.eq(self.saturations + 1)
                    m.next = "COLLECT"
        return m
