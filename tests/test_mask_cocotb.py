"""Runs the cocotb + Verilator testbench of the mask top (sim/cocotb/mask_axis_tb.py)."""

import os
import sys
from pathlib import Path

import pytest

from conftest import BUILD

ROOT = Path(__file__).resolve().parent.parent


def test_mask_top_cocotb():
    pytest.importorskip("cocotb_tools.runner")
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    from obscura.hw.mask_top import MaskTop
    from obscura.hw.types import Geometry
    from obscura.sim.verilator import verilator_bin

    exe, root = verilator_bin()
    os.environ["PATH"] = f"{exe.parent}{os.pathsep}{os.environ['PATH']}"
    os.environ["VERILATOR_ROOT"] = str(root)
    params = {"OBSCURA_TB_W": "64", "OBSCURA_TB_H": "48", "OBSCURA_TB_BOXES": "2",
              "OBSCURA_TB_ZONES": "1"}
    build_dir = BUILD / "cocotb" / "mask_top"
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / "mask_top.v"
    top = MaskTop(Geometry(64, 48), num_boxes=2, num_zones=1)
    text = verilog.convert(top, name="mask_top")
    if not src.exists() or src.read_text() != text:
        src.write_text(text)
    runner = get_runner("verilator")
    runner.build(sources=[src], hdl_toplevel="mask_top", build_dir=build_dir,
                 build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O2"])
    # The runner hands the simulator's Python this process's sys.path as PYTHONPATH.
    sys.path.insert(0, str(ROOT / "sim" / "cocotb"))
    try:
        results = runner.test(hdl_toplevel="mask_top", test_module="mask_axis_tb",
                              test_dir=build_dir, build_dir=build_dir, extra_env=params)
    finally:
        sys.path.remove(str(ROOT / "sim" / "cocotb"))
    from cocotb_tools.runner import get_results
    total, failed = get_results(results)
    assert total == 3 and failed == 0, f"{failed} of {total} cocotb tests failed; see {results}"
