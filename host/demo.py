"""The quick-start job: a short real clip with sound anonymized by the cycle-accurate RTL of the
whole pipeline (Verilator model of `hw/anonymizer.py`: detector, tracker, mask unit), exactly as
`obscura anonymize --backend sim` does it, then checked frame for frame against the numpy model.

Writes under build/demo/: the sample clip, the anonymized video (audio kept), the audit report
and a side-by-side still (input | output). The clip is an excerpt of ../shared/data/video when
that folder exists, else scikit-image's astronaut photo panned and zoomed with a tone.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from .samples import sample_clip

#: The dev video, next to a clone of the project (absent on a user's fresh clone).
DEV_VIDEO = Path(os.environ.get(
    "OBSCURA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "video" \
    / "hamilton-640x360.mp4"


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


class Recording:
    """An accelerator that keeps a copy of every frame it returns (BGR)."""

    def __init__(self, acc):
        self._acc, self.frames = acc, []

    def __getattr__(self, name):
        return getattr(self._acc, name)

    def __enter__(self):
        self._acc.__enter__()
        return self

    def __exit__(self, *exc):
        return self._acc.__exit__(*exc)

    def process(self, frame):
        out = self._acc.process(frame)
        self.frames.append(out.copy())
        return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="build/demo", help="output folder")
    parser.add_argument("--frames", type=int, default=24, help="length of the sample clip")
    parser.add_argument("--source", choices=["auto", "astronaut", "video"], default="auto",
                        help=f"auto: {DEV_VIDEO} when present, else the astronaut")
    args = parser.parse_args(argv)

    import av

    import obscura

    from .cli import build_parser, cmd_anonymize
    from .errors import ObscuraError
    from .hw.mask_model import frames_to_stream
    from .sim.compare import mismatch_report
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    video = DEV_VIDEO if args.source == "video" or (
        args.source == "auto" and DEV_VIDEO.exists()) else None
    if video is not None and not video.exists():
        print(f"error: {video} not found (use --source astronaut)", file=sys.stderr)
        return 2
    clip = out / "sample.mp4"
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=out, prefix=".sample-")
    os.close(fd)
    try:
        frames = sample_clip(tmp, n=args.frames, video=video)
        os.replace(tmp, clip)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    what = f"frames 100-{100 + args.frames - 1} of {video.name}" if video else "the astronaut"
    print(f"sample clip {clip}: {len(frames)} frames of {frames[0].shape[1]}x"
          f"{frames[0].shape[0]} with audio ({what})", flush=True)

    # The main job, exactly as a user runs it: the RTL (sim backend), with an audit report;
    # then the numpy model on the same clip. The frames each backend returns are compared,
    # not the encoded files: FFmpeg's first encode in a process can differ from later ones by
    # a least significant bit after decoding.
    anon, report = out / "anonymized.mp4", out / "report.json"
    print("obscura anonymize through the Verilator model of the whole RTL pipeline "
          "(the first run builds it: a few minutes)", flush=True)
    outputs = {}
    with tempfile.TemporaryDirectory(dir=out, prefix=".model-") as scratch:
        for backend, dest in (("sim", anon), ("model", Path(scratch) / "anonymized.mp4")):
            argv = ["anonymize", str(clip), "-o", str(dest), "--backend", backend,
                    "--overwrite"] + (["--report", str(report)] if backend == "sim" else ["-q"])
            args_cli = build_parser().parse_args(argv)
            acc = Recording(obscura.open(backend, cascade=args_cli.cascade))
            try:
                if cmd_anonymize(args_cli, accelerator=acc) != 0:
                    return 1
            except ObscuraError as exc:
                print(f"obscura: error: {exc}", file=sys.stderr)
                return 1
            outputs[backend] = acc.frames
    got = outputs["sim"]
    # The project's comparison (frame, x, y, expected, got), as the tests report it.
    expected, first, last = frames_to_stream(outputs["model"])
    diff = mismatch_report(expected, frames_to_stream(got)[0], first, last)
    if diff:
        print(f"error: the RTL's output differs from the model's: {diff}", file=sys.stderr)
        return 1
    with av.open(str(anon)) as c:
        audio = [s for s in c.streams if s.type == "audio"]
        seconds = float(c.duration / 1e6) if c.duration else None
    record = json.loads(report.read_text())["inputs"][0]
    faces = record["boxes_per_frame"]
    k = len(got) - 1                                    # a frame with the tracker settled
    with av.open(str(clip)) as c:                       # the frame as it entered the chip
        entered = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)][k]
    side = np.concatenate([entered, got[k]], axis=1)
    write_png_atomic(out / "side-by-side.png", side)
    print(f"RTL output identical to the model's on all {len(got)} frames; audio "
          f"{'kept' if audio else 'MISSING'}; {seconds:.2f} s; faces per frame {faces}; "
          f"fail-closed frames {[f['frame'] for f in record['fail_closed_frames']]}")
    print(f"wrote {anon} (anonymized, with audio), {report} (audit record, no pixels) and "
          f"{out / 'side-by-side.png'} (input | output, frame {k})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
