"""AXI4-Stream names at the edge: tdata packs a pixel as bytes B, G, R (OpenCV's BGR order)."""

from amaranth.lib.wiring import In, Out

__all__ = ["axis_ports", "connect_axis_in", "connect_axis_out"]


def axis_ports(data_width=24):
    """Return the signature members for `s_axis_*` (in) and `m_axis_*` (out) video ports."""
    members = {}
    for side, i, o in (("s_axis", In, Out), ("m_axis", Out, In)):
        members.update({
            f"{side}_tdata": i(data_width), f"{side}_tuser": i(1), f"{side}_tlast": i(1),
            f"{side}_tvalid": i(1), f"{side}_tready": o(1),
        })
    return members


def connect_axis_in(m, top, stream):
    """Drive the pixel `stream` (an input port of a block) from `top.s_axis_*`."""
    p = stream.payload
    m.d.comb += [
        p.b.eq(top.s_axis_tdata[0:8]), p.g.eq(top.s_axis_tdata[8:16]),
        p.r.eq(top.s_axis_tdata[16:24]),
        p.first.eq(top.s_axis_tuser), p.last.eq(top.s_axis_tlast),
        stream.valid.eq(top.s_axis_tvalid), top.s_axis_tready.eq(stream.ready),
    ]


def connect_axis_out(m, stream, top):
    """Drive `top.m_axis_*` from the pixel `stream` (an output port of a block)."""
    p = stream.payload
    m.d.comb += [
        top.m_axis_tdata.eq(p.b | (p.g << 8) | (p.r << 16)),
        top.m_axis_tuser.eq(p.first), top.m_axis_tlast.eq(p.last),
        top.m_axis_tvalid.eq(stream.valid), stream.ready.eq(top.m_axis_tready),
    ]


