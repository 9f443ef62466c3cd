"""Place and route the anonymizer's blocks one at a time, out of context, at the pipeline's
sizes (1280x720, the ULX3S board's memory sizes) and 74.25 MHz: which block's own paths miss
the target, and its worst path (nextpnr's critical path report, in `build/synth/blk_NAME/`).

The whole top takes ~40 minutes to place and ~1.5 hours to route on this machine and names
only its single worst path; a block routes in 2 (tracker) to 12 (detector) minutes.

    python bench/block_timing.py [tracker] [mask] [detector]
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def blocks():
    """Name -> constructor of the block as `Anonymizer` builds it for the 720p board sizes."""
    from obscura.hw.camera_board import (
        BOARD_CORNERS_PER_CLOCK,
        BOARD_DETECTOR,
        BOARD_GROUPER_LUT_RAM,
        BOARD_MIN_BLOCK,
    )
    from obscura.hw.detector import Detector
    from obscura.hw.mask import MaskUnit
    from obscura.hw.tracker import Tracker
    from obscura.hw.types import Geometry
    return {
        "tracker": lambda: Tracker(1280, 720, 32, 32, 1),
        "mask": lambda: MaskUnit(Geometry(1280, 720), 32, 8, BOARD_MIN_BLOCK),
        "detector": lambda: Detector(1280, 720, "frontalface_default", BOARD_DETECTOR,
                                     grouper_lut_ram=BOARD_GROUPER_LUT_RAM,
                                     corners_per_clock=BOARD_CORNERS_PER_CLOCK),
    }


def main(names):
    from synth import synthesize, worst_path
    table = blocks()
    for name in names or list(table):
        out = ROOT / "build" / "synth" / f"blk_{name}"
        res = synthesize(table[name](), f"blk_{name}", out, freq_mhz=74.25, router="router2",
                         mappers=("abc",))
        print(json.dumps({"block": name, "fmax_mhz": res["fmax_mhz"], "luts": res["luts"],
                          "ffs": res["ffs"], "ebr": res["ebr"], "dsp": res["dsp"],
                          "worst_path": worst_path(out / "nextpnr.log")}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
