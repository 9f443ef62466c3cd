"""The `obscura` command line.

Exit codes: 0 success, 1 some inputs failed (the others were processed), 2 usage error.
"""

import argparse
import contextlib
import json
import sys

from . import __version__
from .errors import ObscuraError, TruncatedVideoError

__all__ = ["main"]


def auto_downscale(width):
    """The detector's default luma downscale: the largest power of two <= width / 640, so a
    720p frame is analysed at 640 x 360 (faces from 48 px) and small photos at full size."""
    d = 1
    while d < 4 and width / (2 * d) >= 640:
        d *= 2
    return d


def _detector_args(p):
    from obscura.hw.cascade import CASCADES
    p.add_argument("--cascade", default="frontalface_default",
                   help=f"cascade name ({', '.join(CASCADES)}) or path of an OpenCV Haar "
                        "cascade XML")
    p.add_argument("--scale-factor", type=float, default=1.2,
                   help="pyramid step between scales")
    p.add_argument("--min-neighbors", type=int, default=3,
                   help="raw windows a detection needs, minus one")
    p.add_argument("--threshold-offset", type=int, default=0,
                   help="added to every stage threshold, in 1/64 (-128..127): negative "
                        "finds more faces and more false alarms")
    p.add_argument("--min-size", type=int, default=0,
                   help="smallest face in input pixels (0: the window times the downscale)")
    p.add_argument("--downscale", default="auto", choices=["auto", "1", "2", "4"],
                   help="luma downscale before detection (auto: 2 for 1280-wide frames, 1 "
                        "for frames under 1280 wide, 4 from 2560)")


def cmd_detect(args):
    from dataclasses import replace

    from obscura.hw.cascade import load_cascade
    from obscura.hw.detector_model import DetectorParams, detect

    from .media import iter_frames
    cascade = load_cascade(args.cascade)
    try:                                 # settings out of range: say so before any work
        settings = DetectorParams(scale_factor=args.scale_factor,
                                  min_neighbors=args.min_neighbors,
                                  threshold_offset=args.threshold_offset, min_size=args.min_size)
    except ValueError as exc:
        raise ObscuraError(f"{exc}; see `obscura detect --help`") from None
    sims = {}

    def detect_rtl(rgb, params):
        """The detector RTL (Verilator), one model per frame size and settings."""
        from obscura.sim.detector_sim import DetectorSim
        key = (rgb.shape[:2], params)
        if key not in sims:
            sims[key] = DetectorSim(rgb.shape[1], rgb.shape[0], cascade, params)
        result, _, _ = sims[key].run_frame(rgb)
        if not result.analysed or result.overflow:
            raise ObscuraError(f"the detector RTL did not analyse this frame completely "
                               f"(analysed {result.analysed}, cluster overflow "
                               f"{result.overflow}); try --backend model")
        return result.boxes

    failed = 0
    for source in args.inputs:
        try:
            for n, rgb in iter_frames(source):
                h, w = rgb.shape[:2]
                d = auto_downscale(w) if args.downscale == "auto" else int(args.downscale)
                params = replace(settings, downscale=d)
                if args.backend == "sim":
                    boxes = detect_rtl(rgb, params)
                else:
                    boxes = detect(rgb, cascade, params).boxes
                record = {"source": str(source), "frame": n, "width": w, "height": h,
                          "boxes": [list(map(int, b)) for b in boxes]}
                if args.json:
                    print(json.dumps(record), flush=True)
                else:
                    print(f"{source} frame {n}: {len(boxes)} face(s) "
                          f"{' '.join(f'[{x0},{y0},{x1},{y1}]' for x0, y0, x1, y1 in boxes)}",
                          flush=True)
        except ObscuraError as exc:
            print(f"obscura: error: {exc}", file=sys.stderr, flush=True)
            failed += 1
    return 1 if failed else 0


def cmd_eval(args):
    from .evaluate import evaluate, load_truth
    truth = load_truth(*args.truth)
    results = evaluate(truth, args.negatives, cascade=args.cascade,
                       scale_factor=args.scale_factor, min_neighbors=args.min_neighbors,
                       min_size=args.min_size, downscale=int(args.downscale)
                       if args.downscale != "auto" else 1)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        keys = ["recall", "precision", "coverage", "fp_per_negative_image", "seconds_per_image"]
        print(f"{'detector':10s} " + " ".join(f"{k:>22s}" for k in keys))
        for name, r in results.items():
            print(f"{name:10s} " + " ".join(f"{str(r[k]):>22s}" for k in keys))
    return 0


def _zone(text):
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a zone is x0,y0,x1,y1 in pixels, not {text!r}") \
            from None
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise argparse.ArgumentTypeError(f"zone {text!r} is empty or negative")
    return (x0, y0, x1, y1)


def _color(text):
    try:
        rgb = tuple(int(v) for v in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise argparse.ArgumentTypeError(f"a colour is r,g,b (0..255 each), not {text!r}")
    return rgb


def _backend(text):
    if text in ("sim", "model", "pynq") or text.startswith("pynq:"):
        return text
    raise argparse.ArgumentTypeError(f"choose sim, model, pynq or pynq:PATH/obscura.bit, "
                                     f"not {text!r}")


def cmd_anonymize(args, accelerator=None):
    """`obscura anonymize`; `accelerator` (an opened one, e.g. wrapped to watch its frames)
    replaces the one `--backend` names."""
    from pathlib import Path
    if args.cluster:
        from .cluster import cli_anonymize
        return cli_anonymize(args)

    from .accelerator import open as open_accelerator
    from .anonymize import anonymize_path, live, plan
    acc = accelerator or open_accelerator(args.backend, cascade=args.cascade)
    acc.configure(mode=args.mode, shape=args.shape, block=args.block, color=args.color,
                  margin=args.margin, hold=args.hold, zones=args.zone or [],
                  min_neighbors=args.min_neighbors, threshold_offset=args.threshold_offset)
    failed = 0
    records = []
    with acc:
        live_inputs = [i for i in args.inputs if i.isdigit() or "://" in i]
        files = [i for i in args.inputs if i not in live_inputs]
        for source in live_inputs:
            dest = Path(args.output)
            if dest.is_dir():
                dest = dest / f"live-{source.replace('/', '_').replace(':', '_')}.mp4"
            with _progress_bar(str(source), args.quiet) as progress:
                n = live(acc, source, dest, codec=args.codec, crf=args.crf, progress=progress)
            print(f"{source} -> {dest}: {n} frames", file=sys.stderr)
        jobs, skipped = plan(files, args.output) if files else ([], [])
        for path in skipped:
            print(f"obscura: skipped {path} (not an image or video)", file=sys.stderr)
        for src, dest in jobs:
            start = len(acc.frame_log)
            try:
                if dest.exists() and not args.overwrite:
                    raise ObscuraError(f"{dest} exists; pass --overwrite to replace it")
                with _progress_bar(Path(src).name, args.quiet) as progress:
                    n = anonymize_path(acc, src, dest, keep_metadata=args.keep_metadata,
                                       keep_audio=not args.no_audio, codec=args.codec,
                                       crf=args.crf, progress=progress)
                if not args.quiet:
                    print(f"{src} -> {dest}: {n} frame(s)", file=sys.stderr, flush=True)
                records.append(_audit_record(src, dest, acc.frame_log[start:]))
            except TruncatedVideoError as exc:     # what decoded was written: say so, count it
                print(f"obscura: error: {exc}", file=sys.stderr, flush=True)
                records.append({**_audit_record(src, dest, acc.frame_log[start:]),
                                "error": str(exc)})
                failed += 1
            except ObscuraError as exc:
                print(f"\nobscura: error: {exc}", file=sys.stderr, flush=True)
                records.append({"input": str(src), "error": str(exc)})
                failed += 1
    if args.report:
        _write_report(args, records)
    return 1 if failed else 0


@contextlib.contextmanager
def _progress_bar(name, quiet):
    """A progress bar on stderr (frames, frames per second, ETA when the frame count is known),
    updated by the `progress(done, total)` callback this yields; nothing when `quiet`."""
    if quiet:
        yield None
        return
    from tqdm import tqdm
    with tqdm(desc=name, unit="frame", file=sys.stderr, leave=False, dynamic_ncols=True,
              mininterval=0.5) as bar:
        def progress(done, total):
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)
        yield progress


def _sha256(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _audit_record(src, dest, log):
    """What was done to one input: hashes, frames, boxes, fail-closed frames. No pixels."""
    return {"input": str(src), "input_sha256": _sha256(src), "output": str(dest),
            "output_sha256": _sha256(dest), "frames": len(log),
            "boxes_per_frame": [r["boxes"] for r in log],
            "fail_closed_frames": [{"frame": k, "reason": r["reason"]}
                                   for k, r in enumerate(log) if r["fail_closed"]]}


def _git_hash():
    import subprocess
    from pathlib import Path
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _write_report(args, records):
    import os
    import tempfile
    from pathlib import Path
    settings = {k: getattr(args, k) for k in (
        "mode", "shape", "block", "color", "margin", "hold", "zone", "cascade",
        "min_neighbors", "threshold_offset", "codec", "crf", "no_audio", "keep_metadata")}
    report = {"tool": "obscura", "version": __version__, "rtl_git": _git_hash(),
              "backend": args.backend, "settings": settings, "inputs": records}
    path = Path(args.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, path)


def cmd_info(args):
    import shutil

    from obscura.hw.cascade import CASCADES
    from obscura.hw.regs import register_map
    info = {"version": __version__, "backends": {
                "model": "available (numpy model of the whole pipeline)",
                "sim": "available (Verilator model of the whole RTL pipeline)",
                "pynq": "on a PYNQ board with the overlay (bitstreams/pynq-z2/README.md)"},
            "cascades": list(CASCADES), "g++": shutil.which("g++")}
    try:
        from obscura.sim.verilator import verilator_bin
        info["verilator"] = str(verilator_bin()[0])
    except ObscuraError as exc:
        info["verilator"] = f"missing: {exc}"
    info["registers"] = {r.name: hex(r.reset_value()) for r in register_map()[:6]}
    print(json.dumps(info, indent=2))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="obscura", description="Open FPGA video anonymizer.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=f"obscura {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser("detect", formatter_class=fmt,
                       help="print the faces the detector finds in images and video frames")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files")
    p.add_argument("--json", action="store_true", help="one JSON object per frame and line")
    p.add_argument("--backend", default="model", choices=["model", "sim"],
                   help="model: the numpy model; sim: the detector's RTL in Verilator (built "
                        "per frame size on first use; the same boxes, slower)")
    _detector_args(p)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("eval", formatter_class=fmt,
                       help="detection quality against dlib imglab XML ground truth")
    p.add_argument("truth", nargs="+", help="imglab XML files (images next to them)")
    p.add_argument("--negatives", nargs="*", default=[], help="face-free images")
    p.add_argument("--json", action="store_true", help="print JSON")
    _detector_args(p)
    p.set_defaults(func=cmd_eval, scale_factor=1.1, min_size=20)

    p = sub.add_parser("anonymize", formatter_class=fmt,
                       help="mask the faces in images, videos, folders, cameras or streams")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image or video files, folders (recursive), a camera index or a "
                        "stream URL")
    p.add_argument("-o", "--output", required=True,
                   help="output file (one input) or folder (the input tree is mirrored)")
    p.add_argument("--backend", default="sim", type=_backend,
                   help="sim: the cycle-accurate Verilator model of the chip; model: its "
                        "numpy model (faster, same output); pynq or pynq:PATH/obscura.bit: "
                        "a PYNQ board with the overlay")
    p.add_argument("--mode", default="mosaic", choices=["mosaic", "blur", "solid"])
    p.add_argument("--shape", default="box", choices=["box", "ellipse"])
    p.add_argument("--block", type=int, default=16, choices=[8, 16, 32],
                   help="mosaic / blur block size in pixels")
    p.add_argument("--color", type=_color, default=(0, 0, 0),
                   help="r,g,b of solid fill and of fail-closed frames")
    p.add_argument("--margin", type=int, default=30, help="mask growth, percent of the face")
    p.add_argument("--hold", type=int, default=15,
                   help="frames a face stays masked after the detector last saw it")
    p.add_argument("--zone", type=_zone, action="append",
                   help="x0,y0,x1,y1: a region always masked (repeatable, up to 8)")
    p.add_argument("--cascade", default="frontalface_default", help="detector cascade")
    p.add_argument("--min-neighbors", type=int, default=3,
                   help="raw windows a detection needs, minus one")
    p.add_argument("--threshold-offset", type=int, default=0,
                   help="added to every stage threshold, in 1/64 (-128..127): negative "
                        "finds more faces and more false alarms")
    p.add_argument("--codec", default="libx264", help="video codec of the output")
    p.add_argument("--crf", type=int, default=18, help="quality (x264/x265: lower is better)")
    p.add_argument("--no-audio", action="store_true", help="drop the audio track")
    p.add_argument("--keep-metadata", action="store_true",
                   help="keep container metadata (GPS, creation time, device tags)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--report", metavar="RUN.json",
                   help="write an audit record: version, RTL git hash, backend, settings, "
                        "per input the sha256 of input and output, frames, boxes per frame, "
                        "fail-closed frames and why (no pixels)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run on a Dask cluster: a scheduler address (tcp://host:8786), or "
                        "local[:N] for N worker processes here; videos are split at keyframes")
    p.add_argument("--chunk-frames", type=int, default=600,
                   help="with --cluster: the shortest chunk of a video, in frames")
    p.set_defaults(func=cmd_anonymize)

    p = sub.add_parser("info", help="versions, backends, toolchain and register defaults")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ObscuraError as exc:
        print(f"obscura: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("obscura: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
