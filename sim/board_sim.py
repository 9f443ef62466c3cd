"""Board-level simulation: the camera board core (`hw/camera_board.py`, everything but the
FPGA's I/O primitives and PLL) in Verilator, with a camera model that plays frames in DVP
timing on its own clock and a TMDS decoder on the output (sim/harness/board_harness.cpp
records the symbols, `decode_tmds` here decodes them with the model decoder of `hw/tmds.py`).

`BoardSim.run(frames)` returns the frames recovered from the TMDS lines; they must equal
`PipelineModel` on the RGB565 view of the input frames (`hw/dvp.rgb565_quantize`).
"""

import ctypes
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from obscura.hw.camera_board import BOARD_DETECT_EVERY, BOARD_MIN_BLOCK, CameraBoard
from obscura.hw.detector_model import DetectorParams
from obscura.hw.dvp import rgb565_bytes
from obscura.hw.tmds import tmds_decode
from obscura.hw.video_timing import VideoTiming

from .verilator import HERE, build_model

__all__ = ["BoardSim", "BoardSimTop", "decode_tmds", "SIM_TIMING", "CameraTiming"]

BOARD_HARNESS = HERE / "harness" / "board_harness.cpp"

#: A small raster for CI: 160x120 picture, lines of 330 clocks at 74.25 MHz (4.44 us).
SIM_TIMING = VideoTiming(160, 100, 20, 50, 120, 3, 3, 6, 74.25e6, name="160x120 sim")


@dataclass(frozen=True)
class CameraTiming:
    """The camera model's DVP timing, in PCLKs and line times. The defaults relate to
    `SIM_TIMING` as the OV5640 to the board's raster: a camera line (2 x 160 + 52 PCLKs at
    83.7 MHz) lasts one display line, and a camera frame (134 lines) two lines more than a
    display frame (132), so the display waits for each frame at its end. A camera whose
    frames are shorter than the display's fills the framer's FIFO frame after frame (and stalls
    the pipeline into a DVP FIFO overflow); one whose lines are longer runs it dry within a
    frame."""
    pclk_hz: float = 83.7e6
    h_blank: int = 52
    v_front: int = 2
    v_sync: int = 2
    v_back: int = 10


class BoardSimTop(wiring.Component):
    """`CameraBoard` with the camera clock domain's clock and reset as ports."""

    def __init__(self, core):
        self.core = core
        members = dict(core.signature.members)
        members.update({"cam_clk": In(1), "cam_rst": In(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.domains.cam = ClockDomain("cam")
        m.d.comb += [ClockSignal("cam").eq(self.cam_clk), ResetSignal("cam").eq(self.cam_rst)]
        m.submodules.core = core = self.core
        for name, member in core.signature.members.items():
            if member.flow == In:
                m.d.comb += getattr(core, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(core, name))
        return m


def decode_tmds(records, width, height):
    """Decode recorded (r, g, b) symbols into frames: data symbols are pixels, a rising VSYNC
    (bit c1 of blue's control token) ends a frame. Return (frames, problems): complete
    frames as RGB arrays, and descriptions of anything malformed."""
    cache = {}

    def dec(s):
        s = int(s)
        if s not in cache:
            cache[s] = tmds_decode(s)
        return cache[s]

    frames, problems, cur = [], [], []
    prev_vs = False
    for i, (r, g, b) in enumerate(np.asarray(records).reshape(-1, 3)):
        kr, vr = dec(r)
        kg, vg = dec(g)
        kb, vb = dec(b)
        if len({kr, kg, kb}) != 1:
            problems.append(f"record {i}: channels disagree on data/control ({kr}, {kg}, {kb})")
            continue
        if kb == "data":
            cur.append((vr, vg, vb))
            continue
        vs = bool(vb & 2)
        if vs and not prev_vs and cur:
            if len(cur) == width * height:
                frames.append(np.array(cur, np.uint8).reshape(height, width, 3))
            else:
                problems.append(f"frame {len(frames)}: {len(cur)} pixels, expected "
                                f"{width * height}")
            cur = []
        prev_vs = vs
    return frames, problems


class BoardSim:
    """Build (once) and open the Verilator model of the board core at `width` x `height`."""

    def __init__(self, width=160, height=120, timing=SIM_TIMING, cascade="frontalface_alt",
                 params=None, camera=CameraTiming(), quiet=False, **core_kw):
        self.width, self.height, self.timing, self.camera = width, height, timing, camera
        params = params or DetectorParams()
        core_kw.setdefault("sccb_quarter", 2)
        core_kw.setdefault("clocks_per_ms", 10)
        core_kw.setdefault("max_hold", (1 << 20) - 1)
        core_kw.setdefault("debounce_bits", 6)
        core_kw.setdefault("min_block", BOARD_MIN_BLOCK)
        core_kw.setdefault("detect_every", BOARD_DETECT_EVERY)
        # The model of its output needs these.
        self.min_block, self.detect_every = core_kw["min_block"], core_kw["detect_every"]
        self.core_kw = core_kw
        key = (width, height, timing, cascade, params, tuple(sorted(core_kw.items())))

        def make():
            return BoardSimTop(CameraBoard(width, height, timing, cascade, params, **core_kw))

        lib = build_model("board", make, key, quiet=quiet, harness=BOARD_HARNESS)
        self._lib = L = ctypes.CDLL(str(lib))
        vp, u64, sz = ctypes.c_void_p, ctypes.c_uint64, ctypes.c_size_t
        L.bh_create.restype = vp
        L.bh_destroy.argtypes = [vp]
        L.bh_reset.argtypes = [vp]
        L.bh_set_clocks.argtypes = [vp, u64, u64]
        L.bh_set_inputs.argtypes = [vp, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        L.bh_run.argtypes = [vp, vp, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                             ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, u64, u64,
                             vp, sz, ctypes.POINTER(u64)]
        L.bh_run.restype = sz
        L.bh_sync_cycles.argtypes = [vp]
        L.bh_sync_cycles.restype = u64
        L.bh_sccb_trace.argtypes = [vp, vp, sz]
        L.bh_sccb_trace.restype = sz
        L.bh_status.argtypes = [vp, ctypes.c_int]
        L.bh_status.restype = ctypes.c_uint32
        self._h = L.bh_create()
        L.bh_set_clocks(self._h, round(1e12 / timing.pixel_hz), round(1e12 / camera.pclk_hz))
        L.bh_reset(self._h)

    def close(self):
        if self._h:
            self._lib.bh_destroy(self._h)
            self._h = None

    def __del__(self):
        self.close()

    def set_inputs(self, camera_present=True, btn_mode=0, btn_shape=0):
        self._lib.bh_set_inputs(self._h, int(camera_present), int(btn_mode), int(btn_shape))

    @property
    def sync_cycles(self):
        return self._lib.bh_sync_cycles(self._h)

    def status(self):
        names = ("leds", "camera_ok", "pattern_on", "frames_shown", "frames_empty",
                 "frames_broken", "det_busy")
        return {n: int(self._lib.bh_status(self._h, i)) for i, n in enumerate(names)}

    def sccb_trace(self):
        """Return (scl, sda) arrays: the SCCB line levels at every change."""
        n = self._lib.bh_sccb_trace(self._h, None, 0)
        buf = np.zeros(max(n, 1), np.uint8)
        self._lib.bh_sccb_trace(self._h, buf.ctypes.data, n)
        buf = buf[:n]
        return (buf >> 1) & 1, buf & 1

    def run(self, frames, frames_wanted=None, pace=True, max_sync_cycles=None,
            record_capacity=None):
        """Play `frames` (RGB, width x height) from the camera; return (shown frames,
        problems, info)."""
        w, h, c = self.width, self.height, self.camera
        data = np.ascontiguousarray(np.stack([rgb565_bytes(f) for f in frames])) if frames \
            else np.zeros(1, np.uint8)
        wanted = len(frames) if frames_wanted is None else frames_wanted
        t = self.timing
        cap = record_capacity or (wanted + 2) * (w * h + 4 * t.v_total) + 1_000_000
        rec = np.zeros((cap, 3), np.uint16)
        limit = max_sync_cycles or 500_000_000
        seen = ctypes.c_uint64()
        c0 = self.sync_cycles
        n = self._lib.bh_run(self._h, data.ctypes.data, len(frames), w, h, c.h_blank,
                             c.v_front, c.v_sync, c.v_back, int(pace), wanted, limit,
                             rec.ctypes.data, cap, ctypes.byref(seen))
        shown, problems = decode_tmds(rec[:n], w, h)
        if n == cap:
            problems.append(f"the symbol recorder filled up ({cap} records)")
        info = {"sync_cycles": self.sync_cycles - c0, "frames_seen": int(seen.value),
                "records": int(n), **self.status()}
        return shown, problems, info
