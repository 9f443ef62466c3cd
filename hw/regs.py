"""The register map: one declarative table, the single source of truth.

The register decoder (`RegisterFile`), the host's constants and the table in docs/ are all
generated from `register_map()`. Registers written mid-frame take effect at the next `first`
pixel, because the mask unit latches its settings there.
"""

from dataclasses import dataclass, field

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Field", "Register", "register_map", "anonymizer_register_map", "RegisterFile",
           "bus_signature", "ID_VALUE", "REGION_BASE", "ZONE_BASE", "SLOT_BASE",
           "markdown_table", "DMA_BASE", "dma_register_map", "pynq_register_map"]

#: "OBS" + interface version 1: lets the host check it is talking to obscura.
ID_VALUE = 0x4F425301
REGION_BASE = 0x100
ZONE_BASE = 0x300
SLOT_BASE = 0x400
#: The DMA-facing PYNQ wrapper's own registers (`hw/pynq_top.py`), clear of the pipeline's.
DMA_BASE = 0x80


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    reset: int = 0
    doc: str = ""


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str            # "rw" or "ro"
    doc: str
    fields: tuple = field(default_factory=tuple)

    def reset_value(self):
        return sum(f.reset << f.lsb for f in self.fields)


def _region(name, offset, what):
    return [
        Register(f"{name}_A", offset, "rw", f"{what}: top-left corner (inclusive)", (
            Field("x0", 0, 12, doc="left edge, pixels"),
            Field("y0", 16, 12, doc="top edge, pixels"))),
        Register(f"{name}_B", offset + 4, "rw", f"{what}: bottom-right corner (exclusive)", (
            Field("x1", 0, 12, doc="right edge + 1, pixels"),
            Field("y1", 16, 12, doc="bottom edge + 1, pixels"),
            Field("enable", 31, 1, doc="1: mask this region"))),
    ]


def register_map(num_boxes=32, num_zones=8):
    """Return every register of the mask top, in offset order."""
    regs = [
        Register("ID", 0x00, "ro", "identification: 'OBS' and interface version",
                 (Field("id", 0, 32, ID_VALUE, "0x4F425301"),)),
        Register("CONTROL", 0x04, "rw", "effect settings, latched at each frame start", (
            Field("mode", 0, 2, 0, "0 mosaic, 1 blur, 2 solid"),
            Field("shape", 2, 1, 0, "0 rectangle, 1 inscribed ellipse (boxes only)"),
            Field("block", 3, 2, 1, "mosaic/blur block: 0 8 px (16 on ULX3S), 1 16 px, 2 32 px"))),
        Register("COLOR", 0x08, "rw", "fill colour (solid mode and fail-closed frames)", (
            Field("r", 0, 8), Field("g", 8, 8), Field("b", 16, 8))),
        Register("STATUS", 0x0C, "ro", "live status", (
            Field("frame_ok", 0, 1, doc="current frame is vouched (not failing closed)"),
            Field("means_valid", 1, 1, doc="regions use the previous frame's block means"))),
        Register("ERRORS", 0x10, "ro", "protocol errors since reset",
                 (Field("count", 0, 16),)),
        Register("FRAMES", 0x14, "ro", "frame starts since reset", (Field("count", 0, 16),)),
    ]
    for i in range(num_boxes):
        regs += _region(f"BOX{i}", REGION_BASE + 8 * i, f"tracker box {i}")
    for i in range(num_zones):
        regs += _region(f"ZONE{i}", ZONE_BASE + 8 * i, f"privacy zone {i}")
    offsets = [r.offset for r in regs]
    assert len(set(offsets)) == len(offsets), "register offsets overlap"
    return regs


def _counter(name, offset, doc, width=32):
    return Register(name, offset, "ro", doc, (Field("count", 0, width),))


def anonymizer_register_map(num_slots=32, num_zones=8):
    """Return every register of the whole pipeline (`Anonymizer`), in offset order."""
    regs = [
        Register("ID", 0x00, "ro", "identification: 'OBS' and interface version",
                 (Field("id", 0, 32, ID_VALUE, "0x4F425301"),)),
        Register("CONTROL", 0x04, "rw", "effect and policy, latched at each frame start", (
            Field("mode", 0, 2, 0, "0 mosaic, 1 blur, 2 solid"),
            Field("shape", 2, 1, 0, "0 rectangle, 1 inscribed ellipse (tracker boxes only)"),
            Field("block", 3, 2, 1, "mosaic/blur block: 0 8 px (16 on ULX3S), 1 16 px, 2 32 px"),
            Field("enable", 8, 1, 1, "0: every frame filled with COLOR (privacy shutter)"),
            Field("fail_open", 9, 1, 0, "1: relax fail-closed (frames the detector could not "
                  "vouch for are masked with the last tracker boxes instead of filled); "
                  "explicit opt-in, default closed"))),
        Register("COLOR", 0x08, "rw", "fill colour (solid mode and fail-closed frames)", (
            Field("r", 0, 8), Field("g", 8, 8), Field("b", 16, 8))),
        Register("STATUS", 0x0C, "ro", "live status", (
            Field("frame_ok", 0, 1, doc="mask unit: geometry known, no protocol error so far"),
            Field("means_valid", 1, 1, doc="regions use the previous frame's block means"),
            Field("vouched", 2, 1, doc="the tracker regions are vouched for the next frame"),
            Field("det_busy", 3, 1, doc="the detector is analysing a frame"))),
        _counter("ERRORS", 0x10, "input protocol errors since reset", 16),
        _counter("FRAMES", 0x14, "frame starts since reset", 16),
        Register("TRACK", 0x18, "rw", "tracker settings", (
            Field("margin", 0, 8, 30, "mask growth on each side, percent of the box size"),
            Field("hold", 8, 8, 15, "analyses a face stays masked after its last detection "
                  "(frames where the detector analyses every frame; the ULX3S board analyses "
                  "every fourth)"))),
        Register("DETECT", 0x1C, "rw", "detector settings", (
            Field("min_neighbors", 0, 8, 3, "raw windows a face needs (0: raw windows)"),
            Field("threshold_offset", 8, 8, 0, "signed, added to every stage threshold in "
                  "1/64 of a leaf value: negative finds more faces (and more false alarms); "
                  "latched when an analysis starts"))),
        _counter("DET_FRAMES", 0x20, "frames fully analysed since reset"),
        _counter("DET_OVERRUNS", 0x24, "analyses abandoned: the next frame came first"),
        _counter("DET_BAD", 0x28, "frames due for analysis but not analysed: malformed or "
                 "another size"),
        _counter("DET_CYCLES", 0x2C, "clocks the last analysis took"),
        _counter("DET_WEAK", 0x30, "weak classifiers the last analysis evaluated"),
        _counter("BOXES", 0x34, "detections in the last analysed frame", 8),
        _counter("SATURATIONS", 0x38, "frames with more detections than tracker inputs", 16),
        _counter("FAILED_CLOSED", 0x3C, "frames filled because no vouched boxes were ready"),
    ]
    for i in range(num_zones):
        regs += _region(f"ZONE{i}", ZONE_BASE + 8 * i, f"privacy zone {i}")
    for i in range(num_slots):
        base = SLOT_BASE + 16 * i
        regs += [
            Register(f"SLOT{i}_A", base, "ro", f"tracker slot {i}: top-left corner", (
                Field("x0", 0, 12), Field("y0", 16, 12))),
            Register(f"SLOT{i}_B", base + 4, "ro", f"tracker slot {i}: bottom-right corner", (
                Field("x1", 0, 12), Field("y1", 16, 12), Field("valid", 31, 1))),
            Register(f"SLOT{i}_C", base + 8, "ro", f"tracker slot {i}: motion and life", (
                Field("vx", 0, 8, doc="velocity x, px/frame, signed"),
                Field("vy", 8, 8, doc="velocity y, px/frame, signed"),
                Field("hits", 16, 8, doc="detections matched"),
                Field("age", 24, 8, doc="frames since the last detection"))),
        ]
    offsets = [r.offset for r in regs]
    assert len(set(offsets)) == len(offsets), "register offsets overlap"
    return regs


def dma_register_map(width=1280, height=720):
    """Return the registers the DMA-facing wrapper (`hw/pynq_top.py`) adds to the pipeline's.

    The frame size is fixed when the overlay is built (the detector is elaborated for one
    size), so WIDTH and HEIGHT report it read-only: the host sizes its DMA buffers from them.
    """
    return [
        Register("WIDTH", DMA_BASE, "ro", "frame width the overlay is built for", (
            Field("width", 0, 12, width, "pixels per line; one DMA transfer is "
                  "WIDTH x HEIGHT 32-bit words"),)),
        Register("HEIGHT", DMA_BASE + 0x04, "ro", "frame height the overlay is built for", (
            Field("height", 0, 12, height, "lines per frame"),)),
        Register("DMA_STATUS", DMA_BASE + 0x08, "ro", "input transfers (AXI DMA MM2S)", (
            Field("length_error", 0, 1, doc="the last input transfer's length was not "
                  "WIDTH x HEIGHT words (tlast early, late or missing)"),
            Field("short", 1, 1, doc="the last input transfer ended early (tlast before the "
                  "frame's last pixel)"),
            Field("long", 2, 1, doc="the last input transfer went on past the frame's last "
                  "pixel (the excess is dropped up to its tlast)"),
            Field("in_frame", 3, 1, doc="an input transfer is under way"),
            Field("filling", 4, 1, doc="the output is being filled because of a length "
                  "error"))),
        _counter("DMA_FRAMES", DMA_BASE + 0x0C, "input transfers ended (tlast or frame full)"),
        _counter("DMA_ERRORS", DMA_BASE + 0x10, "input transfers of the wrong length"),
        _counter("DMA_FILLED", DMA_BASE + 0x14, "output frames filled (in whole or from the "
                 "error on) because of a length error"),
        Register("DMA_CONTROL", DMA_BASE + 0x18, "rw", "wrapper control", (
            Field("soft_reset", 0, 1, 0, "write 1: reset the pipeline and the wrapper "
                  "(registers back to their reset values); reads 0"),)),
    ]


def pynq_register_map(width=1280, height=720, num_slots=32, num_zones=8):
    """Return every register of the PYNQ overlay's IP: the pipeline's and the wrapper's."""
    regs = anonymizer_register_map(num_slots, num_zones) + dma_register_map(width, height)
    regs.sort(key=lambda r: r.offset)
    offsets = [r.offset for r in regs]
    assert len(set(offsets)) == len(offsets), "register offsets overlap"
    return regs


def bus_signature():
    """A minimal synchronous register bus (the AXI4-Lite slave wraps it at the edge)."""
    return wiring.Signature({
        "addr": Out(16), "wdata": Out(32), "we": Out(1), "rdata": In(32),
    })


class RegisterFile(wiring.Component):
    """Decoder for `register_map()`: `values[name]` drives a rw register's bits,
    `inputs[name]` is what a ro register reads back. Reads are combinational."""

    def __init__(self, registers):
        self.registers = list(registers)
        self.values = {r.name: Signal(32, name=f"reg_{r.name.lower()}", init=r.reset_value())
                       for r in self.registers if r.access == "rw"}
        self.inputs = {r.name: Signal(32, name=f"in_{r.name.lower()}",
                                      init=r.reset_value())
                       for r in self.registers if r.access == "ro"}
        super().__init__({"bus": In(bus_signature())})

    def elaborate(self, platform):
        m = Module()
        with m.Switch(self.bus.addr):
            for reg in self.registers:
                with m.Case(reg.offset):
                    if reg.access == "rw":
                        mask = sum(((1 << f.width) - 1) << f.lsb for f in reg.fields)
                        value = self.values[reg.name]
                        m.d.comb += self.bus.rdata.eq(value)
                        with m.If(self.bus.we):
                            m.d.sync += value.eq(self.bus.wdata & mask)
                    else:
                        m.d.comb += self.bus.rdata.eq(self.inputs[reg.name])
        return m


def markdown_table(registers):
    """Return the register table for docs/, generated from the map."""
    lines = ["| offset | name | access | field | bits | reset | meaning |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in registers:
        for f in r.fields:
            bits = f"{f.lsb}" if f.width == 1 else f"{f.lsb + f.width - 1}:{f.lsb}"
            lines.append(f"| 0x{r.offset:03X} | {r.name} | {r.access} | {f.name} | {bits} | "
                         f"{f.reset:#x} | {f.doc or r.doc} |")
    return "\n".join(lines) + "\n"


def main():
    """Print the register tables (Markdown) generated from the maps: `make docs` writes them."""
    print("# Registers\n")
    print("Generated from `hw/regs.py` by `make docs`; do not edit by hand. Offsets are byte "
          "addresses on the register bus.\n")
    print("## The anonymizer pipeline (`Anonymizer`)\n")
    print(f"Zones repeat every 8 bytes from 0x{ZONE_BASE:03X}; tracker slots every 16 bytes "
          f"from 0x{SLOT_BASE:03X}.\n")
    print(markdown_table(anonymizer_register_map()))
    print("## The mask unit alone (`MaskTop`)\n")
    print(f"Host-written boxes repeat every 8 bytes from 0x{REGION_BASE:03X}, zones from "
          f"0x{ZONE_BASE:03X}.\n")
    print(markdown_table(register_map()))
    print("## The PYNQ overlay's wrapper (`ObscuraPynq`, `hw/pynq_top.py`)\n")
    print("The IP on the AXI DMA has the pipeline's registers above and these; WIDTH and "
          "HEIGHT read the size the overlay was built for (reset values shown for 1280x720).\n")
    print(markdown_table(dma_register_map()), end="")


if __name__ == "__main__":
    main()
