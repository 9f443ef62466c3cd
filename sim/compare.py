"""Compare RTL output with the model and say where they differ (frame, x, y, expected, got)."""

from pathlib import Path

import numpy as np

__all__ = ["stream_coords", "mismatch_report", "assert_stream_equal", "assert_frames_equal",
           "detector_mismatch"]


def stream_coords(first, last):
    """Return (frame, x, y) of every pixel of a stream from its flags (-1 before any first)."""
    first = np.asarray(first, bool)
    last = np.asarray(last, bool)
    n = len(first)
    frame = np.cumsum(first) - 1
    # A line starts at a first pixel or after a last pixel.
    line_start = first.copy()
    line_start[1:] |= last[:-1]
    line_start[0] = True
    idx = np.arange(n)
    start_pos = np.maximum.accumulate(np.where(line_start, idx, 0))
    x = idx - start_pos
    frame_start = np.maximum.accumulate(np.where(first, idx, 0))
    # Line number within the frame: line starts since the frame's first pixel.
    ls_cum = np.cumsum(line_start)
    y = ls_cum - ls_cum[frame_start]
    y = np.where(frame < 0, ls_cum - 1, y)
    return frame, x, y


def mismatch_report(expected, got, first, last, limit=10):
    """Return a text naming the first mismatching pixels, or '' when equal."""
    expected = np.asarray(expected).reshape(-1, 3)
    got = np.asarray(got).reshape(-1, 3)
    if len(got) != len(expected):
        return f"pixel count differs: expected {len(expected)}, got {len(got)}"
    bad = np.flatnonzero((expected != got).any(axis=1))
    if len(bad) == 0:
        return ""
    frame, x, y = stream_coords(first, last)
    lines = [f"{len(bad)} of {len(expected)} pixels differ (RGB):"]
    for i in bad[:limit]:
        lines.append(f"  frame {frame[i]}, x {x[i]}, y {y[i]}: expected "
                     f"{tuple(int(v) for v in expected[i])}, got {tuple(int(v) for v in got[i])}")
    return "\n".join(lines)


def assert_stream_equal(expected, got, first, last, frames_like=None, save_dir=None, tag="mask"):
    """Fail with a mismatch report; with `frames_like`, save the failing frames as PNG
    (expected, got, difference) under `save_dir`."""
    report = mismatch_report(expected, got, first, last)
    if not report:
        return
    if frames_like is not None and save_dir is not None and len(got) == len(expected):
        import cv2
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        i = 0
        for n, f in enumerate(frames_like):
            size = f.shape[0] * f.shape[1]
            e = np.asarray(expected[i:i + size]).reshape(f.shape)
            g = np.asarray(got[i:i + size]).reshape(f.shape)
            if (e != g).any():
                diff = (np.abs(e.astype(int) - g.astype(int)).max(axis=2) > 0) * 255
                for kind, img in (("expected", e[..., ::-1]), ("got", g[..., ::-1]),
                                  ("diff", diff.astype(np.uint8))):
                    cv2.imwrite(str(save_dir / f"{tag}-frame{n}-{kind}.png"), img)
            i += size
        report += f"\n(failing frames saved under {save_dir})"
    raise AssertionError(report)



def assert_frames_equal(expected, got, what, save_dir):
    """`assert_stream_equal` for lists of RGB frames (the got list may be shorter)."""
    from obscura.hw.mask_model import frames_to_stream
    stream, first, last = frames_to_stream(expected)
    got_stream = (np.concatenate([np.asarray(g).reshape(-1, 3) for g in got]) if len(got)
                  else np.zeros((0, 3), np.uint8))
    assert_stream_equal(stream, got_stream, first, last, frames_like=expected,
                        save_dir=save_dir, tag=what.replace(" ", "_"))

def detector_mismatch(frame, model_trace, rtl_trace, model_det, rtl_result, levels):
    """Return a text naming where the detector RTL and its model diverge on one frame, or ''.

    Compares the per-window trace (level, x, y, stages passed) first, as the earliest point of
    divergence, then the boxes and the counters."""
    rtl = [tuple(int(v) for v in row) for row in np.asarray(rtl_trace).tolist()]
    for k, (a, b) in enumerate(zip(model_trace, rtl)):
        if a != b:
            lvl, x, y, st = a
            scale = levels[lvl][0] / 65536 if lvl < len(levels) else float("nan")
            return (f"frame {frame}: window {k} differs: model level {lvl} (scale {scale:.3f}) "
                    f"x {x} y {y} passed {st} stages; RTL level {b[0]} x {b[1]} y {b[2]} "
                    f"passed {b[3]} stages")
    if len(model_trace) != len(rtl):
        return (f"frame {frame}: model visits {len(model_trace)} windows, RTL {len(rtl)}; "
                f"first extra: {(model_trace + rtl)[min(len(model_trace), len(rtl))]}")
    expected = [tuple(int(v) for v in b) for b in model_det.boxes]
    if expected != list(rtl_result.boxes):
        return f"frame {frame}: boxes differ: model {expected}, RTL {rtl_result.boxes}"
    for name, want, got in (("weak classifiers", model_det.weak_evaluated, rtl_result.weak),
                            ("windows", model_det.windows, rtl_result.windows),
                            ("cluster overflow", bool(model_det.cluster_overflow),
                             rtl_result.overflow)):
        if want != got:
            return f"frame {frame}: {name} differ: model {want}, RTL {got}"
    if not rtl_result.analysed:
        return f"frame {frame}: the RTL did not finish the analysis ({rtl_result})"
    return ""
