"""The mask unit with AXI4-Stream video ports and its register file: the unit the Verilator
harness, cocotb and the `sim` backend drive until the full pipeline top exists."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from .axis import axis_ports, connect_axis_in, connect_axis_out
from .mask import MaskUnit
from .regs import RegisterFile, bus_signature, register_map
from .types import Geometry

__all__ = ["MaskTop"]


class MaskTop(wiring.Component):
    """AXI4-Stream in/out (`s_axis_*`, `m_axis_*`), register bus `reg_*`."""

    def __init__(self, geometry=Geometry(), num_boxes=32, num_zones=8):
        self.geometry = geometry
        self.num_boxes = num_boxes
        self.num_zones = num_zones
        self.registers = register_map(num_boxes, num_zones)
        members = axis_ports()
        members.update({f"reg_{name}": member
                        for name, member in In(bus_signature()).signature.members.items()})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = MaskUnit(self.geometry, self.num_boxes, self.num_zones)
        m.submodules.regs = regs = RegisterFile(self.registers)
        m.d.comb += [
            regs.bus.addr.eq(self.reg_addr), regs.bus.wdata.eq(self.reg_wdata),
            regs.bus.we.eq(self.reg_we), self.reg_rdata.eq(regs.bus.rdata),
        ]
        connect_axis_in(m, self, unit.i)
        connect_axis_out(m, unit.o, self)

        v = regs.values
        m.d.comb += [
            unit.control.mode.eq(v["CONTROL"][0:2]),
            unit.control.box_shape.eq(v["CONTROL"][2]),
            unit.control.block.eq(v["CONTROL"][3:5]),
            unit.control.color.r.eq(v["COLOR"][0:8]),
            unit.control.color.g.eq(v["COLOR"][8:16]),
            unit.control.color.b.eq(v["COLOR"][16:24]),
        ]
        for bank, prefix, count in ((unit.boxes, "BOX", self.num_boxes),
                                    (unit.zones, "ZONE", self.num_zones)):
            for i in range(count):
                a, b = v[f"{prefix}{i}_A"], v[f"{prefix}{i}_B"]
                m.d.comb += [bank[i].x0.eq(a[0:12]), bank[i].y0.eq(a[16:28]),
                             bank[i].x1.eq(b[0:12]), bank[i].y1.eq(b[16:28]),
                             bank[i].enable.eq(b[31])]
        s = unit.status
        inputs = regs.inputs
        m.d.comb += [
            inputs["STATUS"].eq(s.frame_ok | (s.means_valid << 1)),
            inputs["ERRORS"].eq(s.errors),
            inputs["FRAMES"].eq(s.frames),
        ]
        return m
