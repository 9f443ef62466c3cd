"""The SCCB writer's waveform, decoded as I2C, against the OV5640 register table; a camera that
does not acknowledge stops the writer and says so."""

import pytest
from amaranth.sim import Simulator

from obscura.hw.ov5640 import OV5640_720P30_RGB565
from obscura.hw.sccb import DELAY, SCCBWriter, decode_i2c, sccb_writes


def run_writer(table, camera_present=True, quarter=2, clocks_per_ms=10, limit=2_000_000):
    dut = SCCBWriter(table, quarter=quarter, clocks_per_ms=clocks_per_ms)
    trace = {"scl": [], "sda": [], "nack": None, "cycles": 0}

    async def bench(ctx):
        # A device that acknowledges every byte: it pulls SDA low in the ninth bit slot while
        # SCL is high (bits counted at SCL rising edges since the last START).
        bits = 0
        prev_scl, prev_sda = 1, 1
        ack = False
        for cycle in range(limit):
            scl = 0 if ctx.get(dut.scl_oe) else 1
            master_sda = 0 if ctx.get(dut.sda_oe) else 1
            sda = 0 if (ack and camera_present) else master_sda
            ctx.set(dut.sda_i, sda)
            if prev_scl and scl and prev_sda and not sda and not ack:
                bits = 0                                    # START
            if not prev_scl and scl:
                bits += 1
            if prev_scl and not scl:
                ack = bits % 9 == 8                         # the next slot is the ninth
            trace["scl"].append(scl)
            trace["sda"].append(sda)
            prev_scl, prev_sda = scl, sda
            if ctx.get(dut.done):
                trace["nack"] = ctx.get(dut.nack)
                trace["cycles"] = cycle
                return
            await ctx.tick()
        raise AssertionError("the writer did not finish")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return trace


def test_ov5640_table_goes_out_in_order():
    table = OV5640_720P30_RGB565
    trace = run_writer(table)
    assert trace["nack"] == 0
    got = decode_i2c(trace["scl"], trace["sda"])
    expected = sccb_writes(table)
    assert len(got) == len(expected), f"{len(got)} transactions, expected {len(expected)}"
    for k, (g, e) in enumerate(zip(got, expected)):
        assert [b for b, _ in g] == list(e), (
            f"transaction {k}: expected {[hex(b) for b in e]}, got {[hex(b) for b, _ in g]}")
        assert all(acked for _, acked in g), f"transaction {k} not acknowledged"
    # The table's facts the board relies on: 1280x720, RGB565, HTS/VTS of the 720p mode.
    regs = dict((r, v) for r, v in table if r != DELAY)
    assert (regs[0x3808] << 8 | regs[0x3809], regs[0x380A] << 8 | regs[0x380B]) == (1280, 720)
    assert regs[0x4300] == 0x61 and regs[0x501F] == 0x01
    assert table[-1] == (DELAY, 300) and table[-2] == (0x3008, 0x02)


def test_delays_are_kept():
    table = [(0x3008, 0x82), (DELAY, 50), (0x3008, 0x42)]
    trace = run_writer(table, clocks_per_ms=100)
    got = decode_i2c(trace["scl"], trace["sda"])
    assert [[b for b, _ in t] for t in got] == [list(w) for w in sccb_writes(table)]
    # 50 ms x 100 clocks between the two transactions, beyond the bit times.
    assert trace["cycles"] > 5000
    no_delay = run_writer([(0x3008, 0x82), (0x3008, 0x42)], clocks_per_ms=100)
    assert trace["cycles"] - no_delay["cycles"] >= 5000


def test_no_camera_stops_at_the_first_write():
    trace = run_writer(OV5640_720P30_RGB565, camera_present=False)
    assert trace["nack"] == 1
    got = decode_i2c(trace["scl"], trace["sda"])
    assert len(got) == 1 and got[0][0] == (0x78, False)


def test_table_validation():
    with pytest.raises(ValueError, match="address must be 16-bit"):
        SCCBWriter([(0x10000, 1)])
    with pytest.raises(ValueError, match="empty"):
        SCCBWriter([])
