"""AXI4-Lite slave in front of the register bus (`regs.bus_signature`): what PYNQ's MMIO and
cocotbext-axi's AxiLiteMaster talk to.

One transaction at a time; a write takes its address and data together and answers OKAY;
registers are written whole (`wstrb` is ignored: every register is one 32-bit word).
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .regs import bus_signature

__all__ = ["AxiLiteSlave", "axil_ports"]


def axil_ports(prefix="s_axil", addr_width=16):
    """Signature members of an AXI4-Lite slave port named `prefix`_*."""
    return {
        f"{prefix}_awaddr": In(addr_width), f"{prefix}_awvalid": In(1),
        f"{prefix}_awready": Out(1),
        f"{prefix}_wdata": In(32), f"{prefix}_wstrb": In(4), f"{prefix}_wvalid": In(1),
        f"{prefix}_wready": Out(1),
        f"{prefix}_bresp": Out(2), f"{prefix}_bvalid": Out(1), f"{prefix}_bready": In(1),
        f"{prefix}_araddr": In(addr_width), f"{prefix}_arvalid": In(1),
        f"{prefix}_arready": Out(1),
        f"{prefix}_rdata": Out(32), f"{prefix}_rresp": Out(2), f"{prefix}_rvalid": Out(1),
        f"{prefix}_rready": In(1),
    }


class AxiLiteSlave(wiring.Component):
    """`s_axil_*` in, `bus` out (to a `RegisterFile`)."""

    def __init__(self, addr_width=16):
        members = axil_ports("s_axil", addr_width)
        members["bus"] = Out(bus_signature())
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        bvalid, rvalid = Signal(), Signal()
        rdata = Signal(32)
        do_write = self.s_axil_awvalid & self.s_axil_wvalid & ~bvalid
        do_read = self.s_axil_arvalid & ~rvalid & ~do_write
        m.d.comb += [
            self.s_axil_awready.eq(do_write), self.s_axil_wready.eq(do_write),
            self.s_axil_arready.eq(do_read),
            bus.addr.eq(self.s_axil_awaddr), bus.wdata.eq(self.s_axil_wdata),
            bus.we.eq(do_write),
            self.s_axil_bvalid.eq(bvalid), self.s_axil_bresp.eq(0),
            self.s_axil_rvalid.eq(rvalid), self.s_axil_rresp.eq(0),
            self.s_axil_rdata.eq(rdata),
        ]
        with m.If(do_read):
            m.d.comb += bus.addr.eq(self.s_axil_araddr)
            m.d.sync += [rdata.eq(bus.rdata), rvalid.eq(1)]
        with m.Elif(rvalid & self.s_axil_rready):
            m.d.sync += rvalid.eq(0)
        with m.If(do_write):
            m.d.sync += bvalid.eq(1)
        with m.Elif(bvalid & self.s_axil_bready):
            m.d.sync += bvalid.eq(0)
        return m
