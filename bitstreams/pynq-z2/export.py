"""Export the PYNQ overlay's IP (`hw/pynq_top.py: ObscuraPynq`) as Verilog for Vivado.

    .venv/bin/python bitstreams/pynq-z2/export.py --width 640 --height 360 --out build/pynq-z2

Writes `obscura_pynq.v` (top module `obscura_pynq`) and `overlay.json` (the frame size,
cascade and detector parameters the IP is built with: the host must send frames of that size).
The detector's downscale is the one the host library picks for that width
(`obscura.cli.auto_downscale`), so the board's output equals the `sim` and `model` backends'.
"""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=640, help="frame width (default 640)")
    parser.add_argument("--height", type=int, default=360, help="frame height (default 360)")
    parser.add_argument("--cascade", default="frontalface_default", help="Haar cascade")
    parser.add_argument("--out", type=Path, default=Path("build/pynq-z2"),
                        help="output folder (default build/pynq-z2)")
    args = parser.parse_args(argv)
    from amaranth.back import verilog

    from obscura.cli import auto_downscale
    from obscura.hw.detector_model import DetectorParams
    from obscura.hw.pynq_top import ObscuraPynq
    params = DetectorParams(downscale=auto_downscale(args.width))
    try:
        top = ObscuraPynq(args.width, args.height, args.cascade, params)
        text = verilog.convert(top, name="obscura_pynq")
    except ValueError as exc:
        sys.exit(f"export.py: cannot build the IP for {args.width}x{args.height}: {exc}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "obscura_pynq.v").write_text(text)
    (args.out / "overlay.json").write_text(json.dumps(
        {"width": args.width, "height": args.height, "cascade": args.cascade,
         "detector_params": asdict(params), "top": "obscura_pynq"}, indent=2) + "\n")
    print(f"wrote {args.out / 'obscura_pynq.v'} ({args.width}x{args.height}, "
          f"{args.cascade}, downscale {params.downscale})")


if __name__ == "__main__":
    main()
