"""The detector top as a Verilator model: frames in, detection records and window traces out.

`DetectorSim(width, height, cascade, params).run(frames)` returns, per end record, a
`FrameResult` with the boxes, flags and counters, plus the per-window trace, so tests and the
bench compare every detection and every counter with `detector_model`.
"""

import ctypes
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from obscura.hw.detector import CORNERS_PER_CLOCK, DetectorTop
from obscura.hw.detector_model import DetectorParams

from .verilator import build_model

__all__ = ["DetectorSim", "FrameResult", "frame_flags"]

HARNESS = Path(__file__).resolve().parent / "harness" / "detector_harness.cpp"
END_BIT = 48


@dataclass
class FrameResult:
    boxes: list = field(default_factory=list)       # (x0, y0, x1, y1) half-open input pixels
    analysed: bool = False
    overrun: bool = False
    bad_input: bool = False
    overflow: bool = False
    weak: int = 0
    windows: int = 0
    cycles: int = 0


def frame_flags(height, width):
    """Return (first, last) flags of one frame's pixels in raster order."""
    first = np.zeros(height * width, np.uint8)
    first[0] = 1
    last = np.zeros((height, width), np.uint8)
    last[:, -1] = 1
    return first, last.ravel()


def _decode(rec):
    box = tuple((rec >> (12 * k)) & 0xFFF for k in range(4))
    flags = [(rec >> (END_BIT + k)) & 1 for k in range(5)]
    return box, flags


class DetectorSim:
    """Build (once) and open the Verilator model of `DetectorTop`."""

    def __init__(self, width=1280, height=720, cascade="frontalface_default", params=None,
                 quiet=False, corners_per_clock=CORNERS_PER_CLOCK):
        self.params = params or DetectorParams()
        self.width, self.height = width, height
        self.corners_per_clock = corners_per_clock
        cas_key = cascade if isinstance(cascade, str) else cascade.name
        key = (width, height, cas_key, self.params, corners_per_clock)
        lib = build_model("detector_top", lambda: DetectorTop(
            width=width, height=height, cascade=cascade, params=self.params,
            corners_per_clock=corners_per_clock), key, quiet=quiet, harness=HARNESS)
        self._lib = lib = ctypes.CDLL(str(lib))
        ptr, size, u64 = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64
        lib.det_create.restype = ptr
        lib.det_destroy.argtypes = [ptr]
        lib.det_reset.argtypes = [ptr]
        lib.det_set_min_neighbors.argtypes = [ptr, ctypes.c_uint32]
        lib.det_cycles.argtypes = [ptr]
        lib.det_cycles.restype = u64
        lib.det_run.argtypes = [ptr, ptr, ptr, size, ctypes.c_uint32, ctypes.c_uint32, u64, u64,
                                size, ptr, size, ctypes.POINTER(size), ptr, size,
                                ctypes.POINTER(size), ctypes.POINTER(u64)]
        lib.det_run.restype = size
        self._h = lib.det_create()
        self.reset()

    def close(self):
        if self._h:
            self._lib.det_destroy(self._h)
            self._h = None

    def __del__(self):
        self.close()

    def reset(self):
        self._lib.det_reset(self._h)
        self.set_min_neighbors(self.params.min_neighbors)

    def set_min_neighbors(self, value):
        self._lib.det_set_min_neighbors(self._h, value)

    def run_stream(self, bgr, first, last, ends, idle=0.0, stall=0.0, seed=0, max_cycles=None,
                   trace_cap=2_000_000):
        """Push pixels (N, 3 BGR) with flags; clock until `ends` end records are out.
        Return (results, trace array (K, 4): level, x, y, stages, cycles)."""
        bgr = np.ascontiguousarray(bgr, np.uint8).reshape(-1, 3)
        flags = np.ascontiguousarray(np.asarray(first, np.uint8) |
                                     (np.asarray(last, np.uint8) << 1))
        if max_cycles is None:
            max_cycles = 400 * len(bgr) + 10_000_000
        recs = np.zeros((4096, 4), np.uint64)
        trace = np.zeros((trace_cap, 4), np.uint32)
        n_recs, n_trace, used = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.c_uint64()
        self._lib.det_run(self._h, bgr.ctypes.data, flags.ctypes.data, len(bgr),
                          int(idle * 1e6), int(stall * 1e6), seed, max_cycles, ends,
                          recs.ctypes.data, len(recs), ctypes.byref(n_recs),
                          trace.ctypes.data, trace_cap, ctypes.byref(n_trace),
                          ctypes.byref(used))
        results, cur = [], FrameResult()
        for rec, weak, windows, cycles in recs[:n_recs.value].tolist():
            box, (end, analysed, overrun, bad, overflow) = _decode(int(rec))
            if not end:
                cur.boxes.append(box)
                continue
            cur.analysed, cur.overrun, cur.bad_input, cur.overflow = (
                bool(analysed), bool(overrun), bool(bad), bool(overflow))
            cur.weak, cur.windows, cur.cycles = int(weak), int(windows), int(cycles)
            results.append(cur)
            cur = FrameResult()
        return results, trace[:n_trace.value], int(used.value)

    def run_frame(self, rgb, **kw):
        """Analyse one RGB frame; return (FrameResult, trace, cycles)."""
        rgb = np.asarray(rgb)
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, the model was built "
                             f"for {self.width}x{self.height}")
        first, last = frame_flags(self.height, self.width)
        results, trace, cycles = self.run_stream(rgb[..., ::-1].reshape(-1, 3), first, last,
                                                 ends=1, **kw)
        if not results:
            raise RuntimeError(f"the detector gave no result within the cycle limit "
                               f"({cycles} cycles)")
        return results[0], trace, cycles
