"""ULX3S (LFE5U-85F) board top: OV5640 camera on the GPIO header in, DVI on GPDI out.

Adds to the board core (`obscura.hw.camera_board.CameraBoard`) what only a real FPGA has:

* clocks: one EHXPLLL from the 25 MHz crystal gives the TMDS bit clock / 2 (CLKOP, `tmds`
  domain, DDR output), the pixel clock (CLKOS, `sync`: the pipeline and the display) and the
  camera's XCLK (CLKOS2); the camera's PCLK pin clocks the `cam` domain. Resets come from the
  PLL's lock, synchronised into each domain.
* DVI: each channel's 10-bit symbol is taken into the `tmds` domain once per pixel (a toggle
  from the pixel domain, synchronised, marks the load; toggle, synchroniser and strobe are the
  channel's own) and shifted out two bits per `tmds` clock, through two register stages, to
  ODDRX1F (Amaranth's `io.DDRBuffer`), least significant bit first; the clock channel sends
  0b0000011111 (the pixel clock). The GPDI pins are on the top edge, whose I/O logic has no
  x2 gearing (ODDRX2F needs the left or right edge), so the serialiser runs in the fabric at
  5 x the pixel clock (185.7 MHz).
* pins: the camera as a named connector resource (`ov5640_resource`, easy to move), SCCB
  open drain with pull-ups, PWDN low and RESET high; LEDs and the FIRE buttons.

Run `python bitstreams/ulx3s-85f/build.py bitstream` (or `make bitstream BOARD=ulx3s-85f`).
"""

from amaranth.build import Attrs, Clock, Pins, PinsN, Resource, Subsignal
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Const, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer, ResetSynchronizer
from amaranth.lib.wiring import In, Out
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from obscura.hw.camera_board import BOARD_DETECTOR, CameraBoard
from obscura.hw.dvp import dvp_fifo_depth
from obscura.hw.ecp5_pll import ecp5_pll
from obscura.hw.ov5640 import OV5640_HTS, OV5640_PIXEL_HZ_AT_24MHZ, OV5640_VTS
from obscura.hw.video_timing import VideoTiming

__all__ = ["ov5640_resource", "Serialiser", "ULX3STop", "make_platform", "PLL", "TIMING", "PCLK_HZ",
           "CAMERA_PIXEL_HZ", "DVP_DEPTH", "PIXEL_HZ"]

#: The pixel clock: half of CEA 720p30's 74.25 MHz. The whole board routed at 46.8-52 MHz at
#: best (nextpnr, 2026-11-27: 41,000 LUT4 and 187 of 208 block RAMs spread over the die, ~2,500
#: paths short of 13.5 ns), so it runs at 37.1 MHz with a raster of half the width (below):
#: the same line and frame rates as a 74.25 MHz one. The pipeline still takes the camera's
#: 1280 pixels a line, each line in 1280 of its 1674 clocks (the DVP FIFO holds what arrives
#: faster, `DVP_DEPTH`); the detector gets half the clocks a frame (`BOARD_DETECT_EVERY`).
PIXEL_TARGET_MHZ = 74.25 / 2
#: 25 MHz crystal -> CLKOP 5 x the pixel clock (DDR: 10 bits per pixel), CLKOS the pixel clock,
#: CLKOS2 ~ 24 MHz camera XCLK: 185.7 / 37.14 / 23.96 MHz (the pixel clock 0.04 % over its
#: target).
PLL = ecp5_pll(25.0, 5 * PIXEL_TARGET_MHZ, (PIXEL_TARGET_MHZ, 24.0))
PIXEL_HZ = PLL.secondary_mhz[0] * 1e6
XCLK_HZ = PLL.secondary_mhz[1] * 1e6
#: The camera's pixel rate and PCLK (two bytes per pixel) with that XCLK.
CAMERA_PIXEL_HZ = OV5640_PIXEL_HZ_AT_24MHZ * XCLK_HZ / 24e6
PCLK_HZ = 2 * CAMERA_PIXEL_HZ
#: Display raster locked to the camera without a frame buffer: one camera line (HTS camera
#: pixels) is exactly one display line (1674 pixel clocks, 1280 active: CEA 720p60's
#: horizontal proportions, 1650 there, at 720p30's line rate), and the display frame (738
#: lines) is two lines shorter than the camera's (VTS 740), so the display waits for each
#: camera frame at its end (`DVIFramer`) instead of falling behind. 29.95 Hz.
_LINE = round(OV5640_HTS * PIXEL_HZ / CAMERA_PIXEL_HZ)
TIMING = VideoTiming(1280, _LINE - 1280 - 40 - 220, 40, 220, 720, 3, 5, OV5640_VTS - 2 - 728,
                     PIXEL_HZ, name=f"1280x720p30 locked to the OV5640 ({_LINE}x"
                     f"{OV5640_VTS - 2}, {PIXEL_HZ / 1e6:.2f} MHz)")
#: The camera sends a line's 1280 pixels faster (41.9 Mpixel/s) than the pipeline takes them
#: (one a pixel clock): 146 pixels wait in the DVP FIFO at the end of each line.
DVP_DEPTH = dvp_fifo_depth(TIMING.h_active, PIXEL_HZ, CAMERA_PIXEL_HZ)

#: Register stages between each serialiser and its pad (timing, see `Serialiser`).
TMDS_PAD_STAGES = 2


class Serialiser(wiring.Component):
    """One DVI channel's 10:2 serialiser: `word` (pixel domain `sync`, a symbol a pixel) out
    as `o`, two bits a `tmds` clock (five per pixel), least significant first, for a DDR
    output register (`o[0]` first). `channel` (0-3) makes each channel's registers its own.

    Timing (written for 370 MHz, a 74.25 MHz pixel clock's five; 185.7 MHz now): each
    channel has its own synchroniser and load strobe (registered: no XOR before the shift
    register's multiplexer), so they are placed beside its shift register and pad: one strobe
    shared by the four channels, whose pads span 40 columns of the top edge, took 2.5 ns of
    routing (295 MHz). The copies start from different values (`init`: the pixel-domain
    toggle's by `channel & 1`, the synchroniser's by `channel >> 1`, so the four chains
    differ): Yosys would merge identical registers back into one. The strobe comes 3 of the 5
    tmds clocks after the pixel edge, while `word`'s register is stable. Two register stages
    before the pad: one hop from wherever the placer put the shift register took up to 3.2 ns.
    No reset: the first routed build's worst TMDS path was the reset's fan-out into these
    registers."""

    def __init__(self, channel=0):
        self.channel = channel
        super().__init__({"word": In(10), "o": Out(2)})

    def elaborate(self, platform):
        m = Module()
        i = self.channel
        hold = Signal(10, name="word_q")
        m.d.sync += hold.eq(self.word)
        toggle = Signal(init=i & 1)
        m.d.sync += toggle.eq(~toggle)
        first = (i >> 1) & 1
        toggle_t = Signal(init=first)
        toggle_prev = Signal(init=first, reset_less=True)
        m.submodules.sync = FFSynchronizer(toggle, toggle_t, o_domain="tmds", init=first)
        m.d.tmds += toggle_prev.eq(toggle_t)
        load = Signal(reset_less=True)
        m.d.tmds += load.eq(toggle_t ^ toggle_prev)
        shift = Signal(10, reset_less=True)
        with m.If(load):
            m.d.tmds += shift.eq(hold)
        with m.Else():
            # Rotated, not shifted: with zeros shifted in, Yosys made the top bits' load a
            # synchronous reset, whose LSR input needs 0.42 ns of setup (the routed board's
            # worst TMDS path, 367.5 MHz). The rotated-in bits are never sent: the next load
            # comes first.
            m.d.tmds += shift.eq(Cat(shift[2:], shift[:2]))
        bits = shift[0:2]
        for k in range(TMDS_PAD_STAGES):
            nxt = Signal(2, name=f"pad{k}", reset_less=True)
            m.d.tmds += nxt.eq(bits)
            bits = nxt
        m.d.comb += self.o.eq(bits)
        return m


def ov5640_resource(conn=("gpio", 0)):
    """The camera's pins on the ULX3S GPIO header (J1/J2 GP/GN pairs via the `gpio`
    connector). Change the pin names here to move the camera; the map is in README.md."""
    a = Attrs(IO_TYPE="LVCMOS33")
    return Resource(
        "ov5640", 0,
        Subsignal("pclk", Pins("3+", dir="i", conn=conn), Clock(round(PCLK_HZ)), a),
        Subsignal("vsync", Pins("3-", dir="i", conn=conn), a),
        Subsignal("href", Pins("4+", dir="i", conn=conn), a),
        Subsignal("xclk", Pins("4-", dir="o", conn=conn), a),
        Subsignal("data", Pins("5+ 5- 6+ 6- 7+ 7- 8+ 8-", dir="i", conn=conn), a),
        Subsignal("scl", Pins("9+", dir="io", conn=conn), Attrs(IO_TYPE="LVCMOS33",
                                                              PULLMODE="UP")),
        Subsignal("sda", Pins("9-", dir="io", conn=conn), Attrs(IO_TYPE="LVCMOS33",
                                                              PULLMODE="UP")),
        Subsignal("pwdn", Pins("10+", dir="o", conn=conn), a),
        Subsignal("reset", PinsN("10-", dir="o", conn=conn), a),
    )


def make_platform():
    platform = ULX3S_85F_Platform()
    platform.add_resources([ov5640_resource()])
    return platform


class ULX3STop(wiring.Component):
    def __init__(self, core=None):
        self.core = core or CameraBoard(TIMING.h_active, TIMING.v_active, TIMING,
                                        params=BOARD_DETECTOR, dvp_depth=DVP_DEPTH)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        # Clocks and resets.
        clk25 = platform.request("clk25", dir="-")
        m.submodules.clk25_buf = clk25_buf = io.Buffer("i", clk25)
        m.domains.sync = ClockDomain("sync")
        m.domains.tmds = ClockDomain("tmds")
        m.domains.cam = ClockDomain("cam")
        tmds_clk, pix_clk, xclk, lock = Signal(), Signal(), Signal(), Signal()
        m.submodules.pll = PLL.instance(clk25_buf.i, tmds_clk, (pix_clk, xclk), lock)
        cam = platform.request("ov5640", 0, dir={"pclk": "-", "scl": "-", "sda": "-"})
        m.submodules.pclk_buf = pclk_buf = io.Buffer("i", cam.pclk)
        m.d.comb += [ClockSignal("sync").eq(pix_clk), ClockSignal("tmds").eq(tmds_clk),
                     ClockSignal("cam").eq(pclk_buf.i)]
        for domain in ("sync", "tmds", "cam"):
            m.submodules[f"rst_{domain}"] = ResetSynchronizer(~lock, domain=domain)

        m.submodules.core = core = self.core
        # Camera.
        m.d.comb += [cam.xclk.o.eq(xclk), cam.pwdn.o.eq(0), cam.reset.o.eq(0),
                     core.cam_vsync.eq(cam.vsync.i), core.cam_href.eq(cam.href.i),
                     core.cam_data.eq(cam.data.i)]
        m.submodules.scl_buf = scl = io.Buffer("io", cam.scl)
        m.submodules.sda_buf = sda = io.Buffer("io", cam.sda)
        m.d.comb += [scl.o.eq(0), scl.oe.eq(core.sccb_scl_oe),
                     sda.o.eq(0), sda.oe.eq(core.sccb_sda_oe)]
        m.submodules.sda_sync = FFSynchronizer(sda.i, core.sccb_sda_i, init=1)
        # Buttons and LEDs.
        m.d.comb += [core.btn_mode.eq(platform.request("button_fire", 0).i),
                     core.btn_shape.eq(platform.request("button_fire", 1).i)]
        for i in range(8):
            m.d.comb += platform.request("led", i).o.eq(core.leds[i])

        # DVI: load each symbol into the tmds domain once per pixel, shift out 2 bits a clock.
        hdmi = platform.request("hdmi", 0, dir={"clk": "-", "d": "-", "cec": "-", "eth": "-",
                                                "scl": "-", "sda": "-"})
        words = [core.tmds_b, core.tmds_g, core.tmds_r, Const(0b0000011111, 10)]
        ports = [hdmi.d[0], hdmi.d[1], hdmi.d[2], hdmi.clk]
        for i, (word, port) in enumerate(zip(words, ports)):
            m.submodules[f"tmds{i}"] = ser = Serialiser(i)
            m.submodules[f"tmds{i}_ddr"] = ddr = io.DDRBuffer("o", port, o_domain="tmds")
            m.d.comb += [ser.word.eq(word), ddr.o[0].eq(ser.o[0]), ddr.o[1].eq(ser.o[1])]
        return m
