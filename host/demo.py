"""The quick-start job: a real face masked by the cycle-accurate RTL (Verilator model).

Writes under build/demo/: the input, one output per effect, and a side-by-side PNG.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .samples import ASTRONAUT_FACE, astronaut_bgr


def write_png_atomic(path, bgr):
    """Write a PNG through a temporary file in the same folder, then rename it into place."""
    import cv2
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent, prefix=f".{path.stem}-")
    os.close(fd)
    try:
        if not cv2.imwrite(tmp, bgr):
            raise OSError(f"could not write {path}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="build/demo", help="output folder")
    args = parser.parse_args(argv)

    from obscura.hw.mask_model import MaskConfig, MaskModel, frames_to_stream
    from obscura.hw.types import Mode, Shape
    from obscura.sim.mask_sim import MaskSim

    frame = astronaut_bgr()
    rgb_frame = np.ascontiguousarray(frame[..., ::-1])
    sim = MaskSim()
    outputs = []
    for mode, shape in ((Mode.MOSAIC, Shape.ELLIPSE), (Mode.BLUR, Shape.ELLIPSE),
                        (Mode.SOLID, Shape.BOX)):
        cfg = MaskConfig(mode=mode, shape=shape, block=16, color=(40, 40, 40),
                         boxes=[ASTRONAUT_FACE])
        # Two frames: the unit learns the geometry and block means from the first (which it
        # masks entirely, failing closed) and applies the effect to the second.
        rgb, first, last = frames_to_stream([rgb_frame, rgb_frame])
        sim.dev.reset()
        sim.configure(cfg)
        t0 = time.time()
        out, info = sim.process_stream(rgb, first, last)
        seconds = time.time() - t0
        expected = MaskModel(sim.geometry).process_stream(rgb, first, last, cfg)
        exact = bool((out == expected).all())
        masked = np.ascontiguousarray(out[len(out) // 2:].reshape(frame.shape)[..., ::-1])
        write_png_atomic(Path(args.out) / f"output-{mode.name.lower()}.png", masked)
        outputs.append(masked)
        print(f"{mode.name.lower():6s}: {info['cycles']} cycles for {len(rgb)} pixels "
              f"({len(rgb) / info['cycles']:.4f} px/clk, {info['cycles'] / seconds / 1e6:.2f} "
              f"M cycles/s simulated), bit-exact with the model: {exact}")
        if not exact:
            print("error: the RTL differs from the model", file=sys.stderr)
            return 1
    write_png_atomic(Path(args.out) / "input.png", frame)
    side = np.concatenate([frame] + outputs, axis=1)
    write_png_atomic(Path(args.out) / "side-by-side.png", side)
    print(f"wrote {args.out}/input.png, output-*.png and side-by-side.png "
          f"(input | mosaic | blur | solid)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
