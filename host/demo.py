"""The quick-start job: a real face found and masked by the cycle-accurate RTL of the whole
pipeline (Verilator model of `hw/anonymizer.py`: detector, tracker, mask unit).

Writes under build/demo/: the input, one output per effect, and a side-by-side PNG.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .samples import astronaut_bgr


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

    import cv2

    import obscura
    # Half size (256 x 256, the face about 66 px): the whole pipeline simulates at a few
    # hundred thousand clocks a second, and a frame's analysis takes millions of clocks.
    frame = np.ascontiguousarray(cv2.resize(astronaut_bgr(), (256, 256),
                                            interpolation=cv2.INTER_AREA))
    modes = [("mosaic", "ellipse"), ("blur", "ellipse"), ("solid", "box")]
    results = {}
    for backend in ("sim", "model"):
        with obscura.open(backend) as acc:
            acc.configure(block=16, color=(40, 40, 40))
            t0 = time.time()
            # Frames 0 and 1 come out filled (the chip fails closed until the detector has
            # analysed a frame); from frame 2 on, the detections of the same photo apply.
            acc.process(frame)
            acc.process(frame)
            outs = []
            for mode, shape in modes:
                acc.configure(mode=mode, shape=shape)
                outs.append(acc.process(frame))
            results[backend] = outs
            seconds = time.time() - t0
            stats = acc.stats
            print(f"{backend:5s}: {len(modes) + 2} frames of {frame.shape[1]}x{frame.shape[0]} "
                  f"in {seconds:.1f} s; tracked faces {acc.boxes}; {stats}")
    for (mode, _), out_sim, out_model in zip(modes, results["sim"], results["model"]):
        exact = bool((out_sim == out_model).all())
        print(f"{mode:6s}: RTL output bit-exact with the model: {exact}")
        if not exact:
            print("error: the RTL differs from the model", file=sys.stderr)
            return 1
        write_png_atomic(Path(args.out) / f"output-{mode}.png", out_sim)
    write_png_atomic(Path(args.out) / "input.png", frame)
    side = np.concatenate([frame] + results["sim"], axis=1)
    write_png_atomic(Path(args.out) / "side-by-side.png", side)
    print(f"wrote {args.out}/input.png, output-*.png and side-by-side.png "
          f"(input | mosaic | blur | solid), all through the whole RTL pipeline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
