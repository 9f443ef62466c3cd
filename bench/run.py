"""obscura benchmarks: numbers and ratios into build/bench/results.json (no pass/fail here).

Sections: `mask` (issue: mask unit). Each section records what it measured and the command
that produced it; a section that cannot run records null with the reason.
"""

import argparse
import json
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
OUT = ROOT / "build" / "bench"


def git_hash():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def real_720p_frames():
    """Two real 1280x720 frames (dlib photo when ../shared/data exists, else the astronaut),
    with the faces' boxes."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import real_face_sample
    frame, boxes = real_face_sample(1280, 720)
    return [frame, np.roll(frame, (3, 5), axis=(0, 1))], boxes


def bench_mask(quick):
    """Mask unit: bit-exactness at 720p in every mode, throughput, latency, synthesis."""
    from obscura.hw.mask import MaskUnit, latency_cycles
    from obscura.hw.mask_model import MaskConfig, MaskModel, frames_to_stream
    from obscura.hw.types import BLOCK_SIZES, Geometry, Mode, Shape
    from obscura.sim.mask_sim import MaskSim

    res = {"command": "make bench (bench/run.py: bench_mask)"}
    frames, boxes = real_720p_frames()
    rgb, first, last = frames_to_stream(frames)
    sim = MaskSim(Geometry(1280, 720))
    exact = True
    cycles = pixels = 0
    first_out = None
    sim_seconds = 0.0
    combos = [(m, s, b) for m in Mode for s in Shape for b in BLOCK_SIZES]
    for mode, shape, block in combos:
        cfg = MaskConfig(mode=mode, shape=shape, block=block, boxes=boxes,
                         zones=[(1100, 600, 1280, 720)])
        expected = MaskModel(sim.geometry).process_stream(rgb, first, last, cfg)
        sim.dev.reset()
        sim.configure(cfg)
        t0 = time.time()
        got, info = sim.process_stream(rgb, first, last)
        sim_seconds += time.time() - t0
        same = bool((got == expected).all())
        exact &= same
        print(f"  mask 720p {mode.name:6s} {shape.name:7s} block {block:2d}: "
              f"{'bit-exact' if same else 'MISMATCH'}", flush=True)
        cycles += info["cycles"]
        pixels += len(rgb)
        first_out = info["first_out_cycle"]
    res["bit_exact_720p"] = exact
    res["configs_compared_720p"] = len(combos)
    res["px_per_clk"] = round(pixels / (cycles - len(combos) * first_out), 6)
    res["latency_cycles"] = int(first_out)
    res["latency_constant"] = latency_cycles(40)
    res["verilator_mcycles_per_s"] = round(cycles / sim_seconds / 1e6, 2)
    if quick:
        res["synthesis"] = None
        res["synthesis_reason"] = "skipped by --quick"
    else:
        from synth import synthesize
        t0 = time.time()
        syn = synthesize(MaskUnit(Geometry(1280, 720)), "mask_unit",
                         ROOT / "build" / "synth" / "mask_unit", freq_mhz=100)
        res.update({k: syn[k] for k in ("fmax_mhz", "luts", "lut_pct", "ffs", "ebr", "dsp")})
        res["synthesis"] = {"device": syn["device"], "speed_grade": syn["speed"],
                            "target_mhz": syn["target_mhz"], "out_of_context": True,
                            "seconds": round(time.time() - t0, 1), "report": syn["report"]}
    return res


SECTIONS = {"mask": bench_mask}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip synthesis and long runs")
    parser.add_argument("sections", nargs="*", default=list(SECTIONS),
                        help=f"sections to run (default: all of {', '.join(SECTIONS)})")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["meta"] = {"git": git_hash(), "python": platform.python_version(),
                       "machine": platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    for name in args.sections:
        print(f"[bench] {name}", flush=True)
        t0 = time.time()
        try:
            results[name] = SECTIONS[name](args.quick)
        except Exception as exc:          # a section that cannot run says why, others go on
            traceback.print_exc()
            results[name] = None
            results[f"{name}_reason"] = f"{type(exc).__name__}: {exc}"
        print(f"[bench] {name} done in {time.time() - t0:.0f} s", flush=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2) + "\n")
        tmp.replace(path)
    print(json.dumps({k: results[k] for k in args.sections}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
