"""The whole pipeline: video in, detector and tracker beside the stream, mask unit in it, video
out; the register file from `regs.anonymizer_register_map` (docs/architecture.md).

    s_axis -> tap -> delay (DELAY clocks) -> MaskUnit -> m_axis
               \\-> Detector -> records -> Tracker -> regions, vouched -> MaskUnit

Frame k is masked with the tracker state after the detections of frames up to k - 2 (frame
k - 1 is still being analysed while frame k streams in). The delay line gives the tracker the
clocks it needs, after frame k - 1's last pixel, to apply frame k - 2's results before frame
k reaches the mask unit; when it could not, or the detector could not vouch for frame k - 2
(overrun, malformed frame, too many faces), frame k is filled entirely (fail closed).
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In

from .axil import AxiLiteSlave, axil_ports
from .axis import axis_ports, connect_axis_out
from .detector import Detector
from .detector_model import DetectorParams
from .mask import MaskUnit
from .regs import SLOT_BASE, RegisterFile, anonymizer_register_map, bus_signature
from .tracker import Tracker
from .types import BLOCK_SIZES, Geometry, Pixel

__all__ = ["Anonymizer", "AnonymizerAxi", "DELAY"]

#: Clocks every pixel waits between the detector's tap and the mask unit: more than the
#: tracker needs to apply a frame's results (32 detections x 44 clocks + two pipelined 32-slot
#: passes: 1,485 clocks, measured by tests/test_tracker_amaranth.py).
DELAY = 2048
TS_BITS = 24


class Anonymizer(wiring.Component):
    """AXI4-Stream video in/out (`s_axis_*`, `m_axis_*`), register bus `reg_*`; `width` x
    `height` is the frame size the detector analyses (other sizes are not vouched);
    `min_block`: the mask unit's smallest block (`MaskUnit`); `grouper_lut_ram`: the
    detector's grouper in LUT RAM (`Grouper`), for a device short of block RAM;
    `corners_per_clock`: integral corners the detector's engine reads a clock (`Detector`);
    `detect_every`: the detector analyses every this many frames (`Detector`'s `every`), each
    analysis masking the `detect_every` frames after the next one analysed."""

    def __init__(self, width=1280, height=720, cascade="frontalface_default", params=None,
                 num_slots=32, num_zones=8, max_detections=32, delay=DELAY,
                 min_block=BLOCK_SIZES[0], grouper_lut_ram=False, detect_every=1,
                 corners_per_clock=None):
        self.width, self.height = width, height
        self.min_block = min_block
        self.params = params or DetectorParams()
        self.num_slots, self.num_zones, self.delay = num_slots, num_zones, delay
        self.max_detections = max_detections
        self.registers = anonymizer_register_map(num_slots, num_zones)
        self.detect_every = detect_every
        corners = {} if corners_per_clock is None else {"corners_per_clock": corners_per_clock}
        self._detector = Detector(width, height, cascade, self.params,
                                  grouper_lut_ram=grouper_lut_ram, every=detect_every,
                                  **corners)
        members = axis_ports()
        members.update({f"reg_{name}": member
                        for name, member in In(bus_signature()).signature.members.items()})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = regs = RegisterFile(self.registers)
        m.d.comb += [regs.bus.addr.eq(self.reg_addr), regs.bus.wdata.eq(self.reg_wdata),
                     regs.bus.we.eq(self.reg_we), self.reg_rdata.eq(regs.bus.rdata)]
        v, inputs = regs.values, regs.inputs
        m.submodules.detector = det = self._detector
        m.submodules.tracker = trk = Tracker(self.width, self.height, self.num_slots,
                                             self.max_detections, self.detect_every)
        m.submodules.mask = mask = MaskUnit(Geometry(self.width, self.height), self.num_slots,
                                            self.num_zones, self.min_block)

        # Tap and delay line: each pixel waits `delay` clocks before the mask unit.
        now = Signal(TS_BITS)
        m.d.sync += now.eq(now + 1)
        entry = data.StructLayout({"pixel": Pixel, "ts": TS_BITS})
        m.submodules.delay = fifo = SyncFIFOBuffered(width=entry.size,
                                                     depth=self.delay + 8)
        pix = Signal(Pixel)
        m.d.comb += [pix.b.eq(self.s_axis_tdata[0:8]), pix.g.eq(self.s_axis_tdata[8:16]),
                     pix.r.eq(self.s_axis_tdata[16:24]), pix.first.eq(self.s_axis_tuser),
                     pix.last.eq(self.s_axis_tlast), self.s_axis_tready.eq(fifo.w_rdy)]
        accept = self.s_axis_tvalid & fifo.w_rdy
        m.d.comb += [fifo.w_data.eq(Cat(pix, now)), fifo.w_en.eq(accept)]
        # Timing: the detector sees each pixel a clock later, from registers (its luma
        # multipliers would otherwise sit behind whatever drives the input, e.g. the board's
        # source multiplexer).
        m.d.sync += [det.valid.eq(accept), det.pixel.eq(pix)]
        # The delay line's head is taken into a register before the mask unit: the FIFO's
        # block RAM output and its multiplexer never feed the mask's ready logic in the same
        # clock. A pixel waits there until it is `delay` clocks old, as it waited at the FIFO's
        # head before: latency and throughput are unchanged. Two registers in front of the
        # head (`pre`, a ring of two places) take the FIFO's output first, so that the age below
        # is computed from registers only (the block RAM's 5.6 ns clock-to-out, its multiplexer
        # and the age's two carry chains were the whole top's worst path at 56.7 MHz), and so
        # that the FIFO is read whenever a place is free, not when the mask takes a pixel (the
        # mask's ready, through `load`, into the FIFO's read enable and its block RAMs' clock
        # enables was the worst path at 8d3953b). With two places a pixel still moves every
        # clock. A ring, not a shift queue: the FIFO's word goes into its place with no
        # multiplexer (a queue's select after the block RAM's output was a worst path).
        pre = [Signal(entry, name=f"pre{k}") for k in range(2)]
        n_pre, wp, rp = Signal(range(3)), Signal(), Signal()   # fill level, write/read place
        head, head_valid = Signal(entry), Signal()
        take = mask.i.valid & mask.i.ready
        load = (n_pre != 0) & (~head_valid | take)
        fill = fifo.r_rdy & (n_pre != 2)
        oldest = Signal(entry)
        m.d.comb += oldest.eq(Mux(rp, pre[1], pre[0]))
        # Whether the head is `delay` clocks old, registered a clock ahead (for the head it
        # will hold and the time it will be): the age's 24-bit subtraction and comparison sat
        # in front of the mask's handshake, the FIFO's level and the detector-side logic
        # (9.2 LUT levels, the whole top's deepest after the weak-classifier counter).
        # Both candidates' ages are computed from registers and `load` only selects between
        # them: `load` follows the mask's ready, and ready, a subtraction and a comparison in
        # series were the whole top's worst path at 54e691b.
        aged = Signal()
        aged_pre = ((now + 1) - oldest.ts)[:TS_BITS] >= self.delay
        aged_head = ((now + 1) - head.ts)[:TS_BITS] >= self.delay
        m.d.sync += aged.eq(Mux(load, aged_pre, aged_head))
        m.d.comb += [mask.i.payload.eq(head.pixel), mask.i.valid.eq(head_valid & aged),
                     fifo.r_en.eq(fill)]
        m.d.sync += n_pre.eq(n_pre + fill - load)
        with m.If(fill):
            m.d.sync += wp.eq(~wp)
        for k, place in enumerate(pre):
            with m.If(fill & (wp == k)):
                m.d.sync += place.eq(fifo.r_data)
        with m.If(load):
            m.d.sync += [head.eq(oldest), head_valid.eq(1), rp.eq(~rp)]
        with m.Elif(take):
            m.d.sync += head_valid.eq(0)
        connect_axis_out(m, mask.o, self)

        # Detector -> tracker; the tracker learns when the mask unit starts a frame.
        frame_start = mask.i.valid & mask.i.ready & mask.i.payload.first
        m.d.comb += [trk.records.payload.eq(det.o.payload), trk.records.valid.eq(det.o.valid),
                     det.o.ready.eq(trk.records.ready), trk.frame_start.eq(frame_start),
                     det.min_neighbors.eq(v["DETECT"][0:8]),
                     det.threshold_offset.eq(v["DETECT"][8:16].as_signed()),
                     trk.margin.eq(v["TRACK"][0:8]), trk.hold.eq(v["TRACK"][8:16])]

        # Mask settings; the fail-closed decision for the frame that starts now.
        ctl = v["CONTROL"]
        enable, fail_open = ctl[8], ctl[9]
        vouched = trk.vouched_for(trk.latches)
        fail_closed = ~enable | ~(vouched | fail_open)
        m.d.comb += [mask.control.mode.eq(ctl[0:2]), mask.control.box_shape.eq(ctl[2]),
                     mask.control.block.eq(ctl[3:5]), mask.control.color.r.eq(v["COLOR"][0:8]),
                     mask.control.color.g.eq(v["COLOR"][8:16]),
                     mask.control.color.b.eq(v["COLOR"][16:24]),
                     mask.control.fail_closed.eq(fail_closed)]
        failed_closed = Signal(32)
        with m.If(frame_start & fail_closed):
            m.d.sync += failed_closed.eq(failed_closed + 1)
        for i in range(self.num_slots):
            m.d.comb += mask.boxes[i].eq(trk.regions[i])
        for i in range(self.num_zones):
            a, b = v[f"ZONE{i}_A"], v[f"ZONE{i}_B"]
            z = mask.zones[i]
            m.d.comb += [z.x0.eq(a[0:12]), z.y0.eq(a[16:28]), z.x1.eq(b[0:12]),
                         z.y1.eq(b[16:28]), z.enable.eq(b[31])]

        s = mask.status
        m.d.comb += [
            inputs["STATUS"].eq(Cat(s.frame_ok, s.means_valid, vouched, det.busy)),
            inputs["ERRORS"].eq(s.errors), inputs["FRAMES"].eq(s.frames),
            inputs["DET_FRAMES"].eq(det.frames), inputs["DET_OVERRUNS"].eq(det.overruns),
            inputs["DET_BAD"].eq(det.bad_frames), inputs["DET_CYCLES"].eq(det.frame_cycles),
            inputs["DET_WEAK"].eq(det.frame_weak), inputs["BOXES"].eq(trk.last_boxes),
            inputs["SATURATIONS"].eq(trk.saturations),
            inputs["FAILED_CLOSED"].eq(failed_closed),
        ]
        # Tracker slots are read back through one port: every SLOTi register shows the slot
        # the bus address names, and the register file picks SLOTi when the address is slot i's.
        sl = trk.slot_data
        m.d.comb += trk.slot_addr.eq((self.reg_addr - SLOT_BASE) >> 4)
        for i in range(self.num_slots):
            m.d.comb += [
                inputs[f"SLOT{i}_A"].eq(sl.x0 | (sl.y0 << 16)),
                inputs[f"SLOT{i}_B"].eq(sl.x1 | (sl.y1 << 16) | (sl.valid << 31)),
                inputs[f"SLOT{i}_C"].eq(Cat(sl.vx, sl.vy, sl.hits, sl.age)),
            ]
        return m


class AnonymizerAxi(wiring.Component):
    """`Anonymizer` with an AXI4-Lite slave (`s_axil_*`) for the register map: the top for
    PYNQ and for the cocotb bench with cocotbext-axi's AxiLiteMaster."""

    def __init__(self, *args, **kwargs):
        self.core = Anonymizer(*args, **kwargs)
        members = axis_ports()
        members.update(axil_ports("s_axil"))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.axil = axil = AxiLiteSlave()
        for name in self.signature.members:
            if name.startswith("s_axis") or name.startswith("m_axis"):
                port, core_port = getattr(self, name), getattr(core, name)
                if self.signature.members[name].flow == In:
                    m.d.comb += core_port.eq(port)
                else:
                    m.d.comb += port.eq(core_port)
            elif name.startswith("s_axil"):
                port, sub = getattr(self, name), getattr(axil, name)
                if self.signature.members[name].flow == In:
                    m.d.comb += sub.eq(port)
                else:
                    m.d.comb += port.eq(sub)
        m.d.comb += [core.reg_addr.eq(axil.bus.addr), core.reg_wdata.eq(axil.bus.wdata),
                     core.reg_we.eq(axil.bus.we), axil.bus.rdata.eq(core.reg_rdata)]
        return m
