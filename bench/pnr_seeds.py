"""Place and route an already synthesised netlist again with other nextpnr seeds: how far the
routed Fmax moves with placement alone (a whole top's worst path is one long net, so one seed
says little).

    .venv/bin/python bench/pnr_seeds.py build/synth/anonymizer_1280x720_d4 --seeds 2 3

Runs the seeds one after the other (`--jobs` at a time) in `<dir>/seed<N>/`, with the settings
of `synth.synthesize` as `bench/run.py pipeline_synth` uses them (LFE5U-85F, speed 6, out of
context, router2, the board build's placer), and prints each seed's Fmax.
"""

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from synth import nextpnr_command

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bitstreams" / "ulx3s-85f"))
from build import PLACER  # noqa: E402


def run_seed(netlist, seed, freq, device="LFE5U-85F", speed=6):
    """Place and route `netlist` (Yosys JSON) with `seed`; return {clock: achieved MHz}."""
    out = netlist.parent / f"seed{seed}"
    out.mkdir(exist_ok=True)
    cmd = nextpnr_command(netlist.resolve(), device, speed, freq, seed, "router2", PLACER,
                          out_of_context=True)
    with open(out / "nextpnr.log", "w") as log:
        subprocess.run(cmd, cwd=out, stdout=log, stderr=subprocess.STDOUT, check=True)
    report = json.loads((out / "report.json").read_text())
    return {clk: v["achieved"] for clk, v in report.get("fmax", {}).items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("synth_dir", type=Path, help="a directory `synth.synthesize` wrote")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--freq", type=float, default=74.25, help="target MHz (default 74.25)")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    nets = sorted(args.synth_dir.glob("*.json"))
    nets = [n for n in nets if n.name not in ("result.json", "report.json")]
    if len(nets) != 1:
        sys.exit(f"{args.synth_dir}: expected one Yosys netlist (*.json), found {len(nets)}; "
                 "run `bench/run.py pipeline_synth` first")
    with ThreadPoolExecutor(args.jobs) as pool:
        results = pool.map(lambda s: (s, run_seed(nets[0], s, args.freq)), args.seeds)
        for seed, fmax in results:
            print(f"seed {seed}: " + ", ".join(f"{c} {f:.2f} MHz" for c, f in fmax.items()),
                  flush=True)


if __name__ == "__main__":
    main()
