"""Place and route an already synthesised netlist again with other nextpnr seeds: how far the
routed Fmax moves with placement alone (a whole top's worst path is one long net, so one seed
says little). `bench/run.py pipeline_synth` does this for seeds 1-3.

    .venv/bin/python bench/pnr_seeds.py build/synth/anonymizer_1280x720_d4 --seeds 4 5

Runs the seeds (`--jobs` at a time) in `<dir>/seed<N>/` with `synth.route_seed` (LFE5U-85F,
speed 6, out of context, router2, the board build's placer) and prints each seed's Fmax and
worst path.
"""

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from synth import route_seed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("synth_dir", type=Path, help="a directory `synth.synthesize` wrote")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--freq", type=float, default=74.25, help="target MHz (default 74.25)")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    nets = [n for n in sorted(args.synth_dir.glob("*.json"))
            if n.name not in ("result.json", "report.json")]
    if len(nets) != 1:
        sys.exit(f"{args.synth_dir}: expected one Yosys netlist (*.json), found {len(nets)}; "
                 "run `bench/run.py pipeline_synth` first")
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = pool.map(lambda s: (s, route_seed(args.synth_dir, nets[0].stem, s,
                                                 freq_mhz=args.freq)), args.seeds)
        for seed, res in runs:
            print(f"seed {seed}: {res['fmax_mhz']} MHz (placed {res['fmax_placed_mhz']}); "
                  f"worst path {res['worst_path']}", flush=True)


if __name__ == "__main__":
    main()
