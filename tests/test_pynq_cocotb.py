"""Runs the cocotb + Verilator testbench of the PYNQ overlay's IP (sim/cocotb/pynq_axis_tb.py)
on 160x120 frames with the 20 px cascade."""

import os
import sys
from pathlib import Path

import pytest

from conftest import BUILD

ROOT = Path(__file__).resolve().parent.parent
W, H, CASCADE = 160, 120, "frontalface_alt"


def test_pynq_ip_cocotb():
    pytest.importorskip("cocotb_tools.runner")
    from amaranth.back import verilog
    from cocotb_tools.runner import get_results, get_runner

    from obscura.hw.pynq_top import ObscuraPynq
    from obscura.sim.verilator import verilator_bin

    exe, root = verilator_bin()
    os.environ["PATH"] = f"{exe.parent}{os.pathsep}{os.environ['PATH']}"
    os.environ["VERILATOR_ROOT"] = str(root)
    params = {"OBSCURA_TB_W": str(W), "OBSCURA_TB_H": str(H), "OBSCURA_TB_CASCADE": CASCADE}
    build_dir = BUILD / "cocotb" / "obscura_pynq"
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / "obscura_pynq.v"
    text = verilog.convert(ObscuraPynq(W, H, CASCADE), name="obscura_pynq")
    if not src.exists() or src.read_text() != text:
        src.write_text(text)
    runner = get_runner("verilator")
    runner.build(sources=[src], hdl_toplevel="obscura_pynq", build_dir=build_dir,
                 build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O2"])
    sys.path.insert(0, str(ROOT / "sim" / "cocotb"))
    try:
        results = runner.test(hdl_toplevel="obscura_pynq", test_module="pynq_axis_tb",
                              test_dir=build_dir, build_dir=build_dir, extra_env=params)
    finally:
        sys.path.remove(str(ROOT / "sim" / "cocotb"))
    total, failed = get_results(results)
    assert total == 2 and failed == 0, f"{failed} of {total} cocotb tests failed; see {results}"
