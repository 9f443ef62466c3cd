"""The ULX3S top's pieces that need no synthesis: PLL settings, the camera pin map, the DVI
serialisers, the report check that makes `make bitstream` fail on missed timing, flashing
without the tool."""

import json

import pytest
from amaranth.hdl import Module
from amaranth.lib import io, wiring

from conftest import load_board_module as load
from obscura.hw.ecp5_pll import ecp5_pll


def test_pll_search_respects_ecp5_limits():
    cfg = ecp5_pll(25.0, 371.25, (74.25, 24.0))
    assert 400 <= cfg.vco_mhz <= 800
    assert 3.125 <= 25.0 / cfg.clki_div
    assert cfg.clkfb_div <= 80 and cfg.clkop_div <= 128
    # The nearest reachable to 5 x 74.25 MHz with CLKFB_DIV <= 80: 25 * 74 / 5 = 370 MHz.
    assert cfg.fout_mhz == pytest.approx(370.0)
    pix, xclk = cfg.secondary_mhz
    assert pix == pytest.approx(cfg.fout_mhz / 5)          # bit clock / 5: DDR, 10 bits
    assert abs(pix - 74.25) / 74.25 < 0.005                # DVI receivers: +-0.5 %
    assert abs(xclk - 24.0) / 24.0 < 0.01
    inst = cfg.instance(0, 0, (0, 0), 0)
    assert inst.type == "EHXPLLL"
    assert ecp5_pll(25.0, 125.0).fout_mhz == pytest.approx(125.0)
    with pytest.raises(ValueError, match="three secondary"):
        ecp5_pll(25.0, 100.0, (1, 2, 3, 4))


def test_board_clocks_locked_to_the_camera():
    top = load("top")
    pix, xclk = top.PLL.secondary_mhz
    assert pix == pytest.approx(top.PLL.fout_mhz / 5)     # bit clock / 5: DDR, 10 bits
    assert abs(pix - 37.125) / 37.125 < 0.005
    assert abs(xclk - 24.0) / 24.0 < 0.01
    t = top.TIMING
    assert (t.h_active, t.v_active, t.h_total) == (1280, 720, 1674)
    # One display line lasts one camera line (to a clock) and the display frame is shorter
    # than the camera's, so the display waits for each camera frame instead of falling behind.
    from obscura.hw.ov5640 import OV5640_HTS, OV5640_VTS
    camera_line = OV5640_HTS / top.CAMERA_PIXEL_HZ
    assert abs(t.h_total / t.pixel_hz - camera_line) < 1 / t.pixel_hz
    assert t.h_total * t.v_total / t.pixel_hz < OV5640_VTS * camera_line
    assert 29.9 < t.pixel_hz / (t.h_total * t.v_total) < 30.1


def test_camera_pin_map_in_the_constraints(tmp_path):
    top = load("top")

    class Pins(wiring.Component):
        def __init__(self):
            super().__init__({})

        def elaborate(self, platform):
            m = Module()
            cam = platform.request("ov5640", 0, dir="-")
            for name in ("pclk", "vsync", "href", "data", "xclk"):
                m.submodules[name] = io.Buffer("o" if name == "xclk" else "i",
                                               getattr(cam, name))
            return m

    platform = top.make_platform()
    plan = platform.build(Pins(), name="pins", do_build=False)
    plan.extract(str(tmp_path))
    lpf = (tmp_path / "pins.lpf").read_text()
    # gpio connector pairs 3+, 3-, 4+ on the ULX3S header are B9, C10, A7 (amaranth-boards).
    assert 'LOCATE COMP "ov5640_0__pclk__io" SITE "B9"' in lpf
    assert 'LOCATE COMP "ov5640_0__vsync__io" SITE "C10"' in lpf
    assert 'LOCATE COMP "ov5640_0__href__io" SITE "A7"' in lpf
    assert f'FREQUENCY PORT "ov5640_0__pclk__io" {float(round(top.PCLK_HZ))} HZ' in lpf


def test_report_check_fails_on_missed_timing(tmp_path):
    build = load("build")
    report = {"fmax": {"$glbnet$clk": {"achieved": 35.2, "constraint": 74.0},
                       "$glbnet$tmds": {"achieved": 400.0, "constraint": 370.0}},
              "utilization": {"TRELLIS_COMB": {"used": 41000, "available": 83640},
                              "DP16KD": {"used": 150, "available": 208}}}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    fmax, usage = build.parse_report(path)
    assert fmax["$glbnet$clk"]["met"] is False and fmax["$glbnet$tmds"]["met"] is True
    assert usage["lut_pct"] == pytest.approx(49.02) and usage["ebr"] == 150


def test_flash_without_openfpgaloader_says_what_to_do(monkeypatch):
    build = load("build")
    monkeypatch.setenv("OPENFPGALOADER", "openFPGALoader-definitely-not-installed")
    with pytest.raises(build.BuildError, match="install openFPGALoader"):
        build.flash()


def test_a_design_that_does_not_fit_is_measured_from_the_log(tmp_path):
    build = load("build")
    log = tmp_path / "nextpnr.log"
    log.write_text("Info: Device utilisation:\n"
                   "Info: \t              DP16KD:     327/    208   157%\n"
                   "Info: \t          MULT18X18D:      76/    156    48%\n"
                   "Info: \t        TRELLIS_COMB:   39676/  83640    47%\n"
                   "ERROR: Unable to place cell 'x', no BELs remaining to implement cell type "
                   "'DP16KD'\n")
    util, error = build.parse_log_utilisation(log)
    usage = build._usage(util)
    assert (usage["ebr"], usage["ebr_available"], usage["dsp"]) == (327, 208, 76)
    assert usage["lut_pct"] == pytest.approx(47.44)
    assert "no BELs remaining" in error


def serialised_bits(channel, words):
    """Simulate one `Serialiser` (pixel clock 5 x slower than the tmds clock, edges aligned
    as the PLL makes them); return its output bits in the order the DDR register sends them."""
    from amaranth.hdl import ClockDomain
    from amaranth.sim import Simulator

    top = load("top")
    m = Module()
    m.domains.sync, m.domains.tmds = ClockDomain("sync"), ClockDomain("tmds")
    m.submodules.ser = ser = top.Serialiser(channel)
    sim = Simulator(m)
    sim.add_clock(5e-9, domain="sync")
    sim.add_clock(1e-9, domain="tmds")
    bits = []

    async def drive(ctx):
        for w in words:
            ctx.set(ser.word, int(w))
            await ctx.tick("sync")

    async def collect(ctx):
        for _ in range(5 * len(words)):
            await ctx.tick("tmds")
            o = ctx.get(ser.o)
            bits.extend([o & 1, o >> 1])

    sim.add_testbench(drive)
    sim.add_testbench(collect)
    sim.run()
    return bits


def test_serialisers_send_every_symbol_lsb_first_with_the_same_latency():
    """Each channel's serialiser (its own synchroniser and strobe, registers starting from
    different values) sends every pixel's symbol whole, least significant bit first, one
    after the other, and all four channels with the same latency (DVI lanes must not skew)."""
    import numpy as np

    words = np.random.default_rng(5).integers(0, 1024, 40)
    latencies = []
    for channel in range(4):
        bits = serialised_bits(channel, words)
        found = None
        for start in range(0, 100, 2):
            symbols = [sum(b << k for k, b in enumerate(bits[start + 10 * j:start + 10 * j + 10]))
                       for j in range(25)]
            for lag in range(5):
                if symbols[lag:] == [int(w) for w in words[:25 - lag]]:
                    found = (start, lag)
            if found:
                break
        assert found, f"channel {channel}: the symbols never come out whole and in order"
        latencies.append(found[0] - 10 * found[1])
    assert len(set(latencies)) == 1, latencies
