"""DVP camera input: 8-bit parallel video (byte pairs of RGB565, VSYNC and HREF markers) in the
camera's pixel clock domain, crossing into the pipeline's domain through an `AsyncFIFO`.

Protocol (OV5640 DVP with output format RGB565, register 0x4300 = 0x61, both bytes per pixel
sampled on the rising edge of PCLK):

* VSYNC active (a pulse in the vertical blanking) marks a new frame: the next pixel carries
  `first`.
* HREF high while a line's bytes come, two per pixel: R[4:0] G[5:3], then G[2:0] B[4:0].
* A pixel is sent on when the next one is complete or when HREF falls (then it carries
  `last`), so the capture adds one pixel of latency and needs no line length.

`rgb565_expand` (colour depth), `dvp_encode` (a camera model: frames to per-PCLK samples)
and `dvp_capture_model` (samples to pixel stream) are the spec of `DVPCapture`.

A pixel that finds the FIFO full is dropped and counted (`overflow`, sticky): the line it
belonged to comes out short, which the pipeline treats as a protocol error and fills the rest
of the frame (fail closed), so losing pixels never shows a raw face.
"""

import math

import numpy as np
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import AsyncFIFO
from amaranth.lib.wiring import In, Out

from .types import Pixel, pixel_stream

__all__ = ["DVPCapture", "DVPInput", "rgb565_expand", "rgb565_quantize", "rgb565_bytes",
           "dvp_encode", "dvp_capture_model", "dvp_fifo_depth"]


def rgb565_expand(r5, g6, b5):
    """Return 8-bit r, g, b from 5/6/5-bit values by replicating the top bits (so 0 -> 0 and
    full scale -> 255)."""
    return (r5 << 3) | (r5 >> 2), (g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2)


def rgb565_quantize(frame):
    """Return what an RGB888 frame looks like after a camera sends it as RGB565 and the
    capture expands it (the pipeline's input for that frame)."""
    f = np.asarray(frame, np.uint16)
    r5, g6, b5 = f[..., 0] >> 3, f[..., 1] >> 2, f[..., 2] >> 3
    r, g, b = rgb565_expand(r5, g6, b5)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def rgb565_bytes(frame):
    """Return the DVP bytes of an RGB frame, (H, 2W): R[4:0] G[5:3], then G[2:0] B[4:0]."""
    f = np.asarray(frame, np.uint16)
    r5, g6, b5 = f[..., 0] >> 3, f[..., 1] >> 2, f[..., 2] >> 3
    hi = (r5 << 3) | (g6 >> 3)
    lo = ((g6 & 7) << 5) | b5
    out = np.empty(f.shape[:2] + (2,), np.uint8)
    out[..., 0], out[..., 1] = hi, lo
    return out.reshape(f.shape[0], -1)


def dvp_encode(frames, h_blank=16, v_front=2, v_sync=2, v_back=2):
    """Camera model: return (vsync, href, data) arrays, one entry per PCLK, of `frames` (RGB)
    sent as RGB565 byte pairs with `h_blank` idle clocks after each line and, per frame,
    `v_front` + `v_sync` + `v_back` blank line times (VSYNC high during `v_sync`) before it."""
    vs, hr, da = [], [], []
    for frame in frames:
        h, w, _ = frame.shape
        line = 2 * w + h_blank
        for k, n in ((0, v_front), (1, v_sync), (0, v_back)):
            vs.append(np.full(n * line, k, bool))
            hr.append(np.zeros(n * line, bool))
            da.append(np.zeros(n * line, np.uint8))
        rows = rgb565_bytes(frame)
        for y in range(h):
            vs.append(np.zeros(line, bool))
            hr.append(np.r_[np.ones(2 * w, bool), np.zeros(h_blank, bool)])
            da.append(np.r_[rows[y], np.zeros(h_blank, np.uint8)])
    return np.concatenate(vs), np.concatenate(hr), np.concatenate(da)


def dvp_capture_model(vsync, href, data):
    """Return (rgb, first, last) of the pixels `DVPCapture` emits for these samples."""
    rgb, first, last = [], [], []
    pending_first = False
    phase = 0
    hi = 0
    held = None
    prev_href = False
    for v, h, d in zip(vsync, href, data):
        if v:
            pending_first = True
        if prev_href and not h and held is not None:
            rgb.append(held[0])
            first.append(held[1])
            last.append(True)
            held = None
        if h:
            if phase == 0:
                hi = int(d)
            else:
                lo = int(d)
                px = rgb565_expand(hi >> 3, ((hi & 7) << 3) | (lo >> 5), lo & 31)
                if held is not None:
                    rgb.append(held[0])
                    first.append(held[1])
                    last.append(False)
                held = (px, pending_first)
                pending_first = False
            phase ^= 1
        else:
            phase = 0
        prev_href = bool(h)
    return (np.array(rgb, np.uint8).reshape(-1, 3), np.array(first, bool),
            np.array(last, bool))


class DVPCapture(wiring.Component):
    """DVP samples in, pixels out (`valid` one clock per pixel, no backpressure), all in the
    domain `domain` (the camera's PCLK). Inputs are registered once at the pins."""

    vsync: In(1)
    href: In(1)
    data: In(8)
    valid: Out(1)
    pixel: Out(Pixel)

    def __init__(self, domain="cam", vsync_active_high=True):
        self._domain = domain
        self._vpol = vsync_active_high
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        sync = m.d[self._domain]
        vs, hr, d = Signal(), Signal(), Signal(8)
        sync += [vs.eq(self.vsync if self._vpol else ~self.vsync), hr.eq(self.href),
                 d.eq(self.data)]
        prev_hr = Signal()
        phase = Signal()
        hi = Signal(8)
        pending_first = Signal()
        held = Signal(Pixel)
        held_valid = Signal()
        sync += prev_hr.eq(hr)
        with m.If(vs):
            sync += pending_first.eq(1)
        sync += self.valid.eq(0)
        with m.If(prev_hr & ~hr & held_valid):
            sync += [self.pixel.eq(held), self.pixel.last.eq(1), self.valid.eq(1),
                     held_valid.eq(0)]
        with m.If(hr):
            sync += phase.eq(~phase)
            with m.If(~phase):
                sync += hi.eq(d)
            with m.Else():
                r5, g6, b5 = hi[3:8], Cat(d[5:8], hi[0:3]), d[0:5]
                sync += [held.r.eq(Cat(r5[2:5], r5)), held.g.eq(Cat(g6[4:6], g6)),
                         held.b.eq(Cat(b5[2:5], b5)), held.first.eq(pending_first),
                         held.last.eq(0), held_valid.eq(1), pending_first.eq(0)]
                with m.If(held_valid):
                    sync += [self.pixel.eq(held), self.pixel.last.eq(0), self.valid.eq(1)]
        with m.Else():
            sync += phase.eq(0)
        return m


def dvp_fifo_depth(width, pixel_hz, camera_pixel_hz, slack=64):
    """The `DVPInput` FIFO depth (a power of two) for lines of `width` pixels sent at
    `camera_pixel_hz` and taken at one a clock of `pixel_hz`: the pixels a line leaves waiting
    when the camera is faster, plus `slack` for the crossing's latency and stalls."""
    backlog = max(0.0, width * (1 - pixel_hz / camera_pixel_hz))
    return 1 << (math.ceil(backlog) + slack - 1).bit_length()


class DVPInput(wiring.Component):
    """`DVPCapture` in the `cam` domain, an `AsyncFIFO` into `sync`, a pixel stream `o` out.
    `overflow` (sync domain) is set for good once a pixel found the FIFO full."""

    vsync: In(1)
    href: In(1)
    data: In(8)
    o: Out(pixel_stream())
    overflow: Out(1)

    def __init__(self, depth=64, vsync_active_high=True):
        self.depth = depth
        self._vpol = vsync_active_high
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.capture = cap = DVPCapture("cam", self._vpol)
        m.submodules.fifo = fifo = AsyncFIFO(width=Pixel.as_shape().size, depth=self.depth,
                                             r_domain="sync", w_domain="cam")
        m.d.comb += [cap.vsync.eq(self.vsync), cap.href.eq(self.href), cap.data.eq(self.data),
                     fifo.w_data.eq(cap.pixel), fifo.w_en.eq(cap.valid),
                     self.o.payload.eq(fifo.r_data), self.o.valid.eq(fifo.r_rdy),
                     fifo.r_en.eq(self.o.ready)]
        lost = Signal()
        with m.If(cap.valid & ~fifo.w_rdy):
            m.d.cam += lost.eq(1)
        m.submodules.lost_sync = FFSynchronizer(lost, self.overflow, o_domain="sync")
        return m
