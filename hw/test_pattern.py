"""A test pattern for a board with no camera: a gradient with three face-sized blocks (skin
tone, two dark eye bands) bouncing around, one frame every `period` clocks.

It is a pixel stream like a camera's (`first`, `last`), so it goes through the whole pipeline:
what the board shows is the pipeline's output for it (the detector does not take these blocks
for faces, so they show unmasked unless a zone covers them, and failing closed fills them).
`pattern_frames` is the model.
"""

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .types import pixel_stream

__all__ = ["TestPattern", "pattern_frames", "SKIN", "EYES"]

SKIN = (224, 172, 140)
EYES = (60, 40, 40)


def _blocks(w, h, s):
    """Initial (x, y, vx, vy) of the three blocks."""
    return [(w // 8, h // 6, 3, 2), (w // 2 - s // 2, h // 2 - s // 2, -5, 3),
            (w - s - w // 8, h - s - h // 6, 4, -2)]


def _step(p, v, limit):
    n = p + v
    if n < 0 or n > limit:
        v = -v
        n = p + v
    return n, v


def pattern_frames(w, h, size, count):
    """Return `count` frames (RGB uint8) of the pattern, from the one after reset."""
    blocks = _blocks(w, h, size)
    x = np.arange(w)
    y = np.arange(h)
    out = []
    for _ in range(count):
        f = np.empty((h, w, 3), np.uint8)
        f[..., 0] = ((x >> 2) & 0xFF)[None, :]
        f[..., 1] = ((y >> 2) & 0xFF)[:, None]
        f[..., 2] = 0x40
        for bx, by, _, _ in blocks:
            f[by:by + size, bx:bx + size] = SKIN
            ey0, ey1 = by + size // 4, by + size // 4 + size // 8
            f[ey0:ey1, bx + size // 5:bx + 2 * size // 5] = EYES
            f[ey0:ey1, bx + 3 * size // 5:bx + 4 * size // 5] = EYES
        out.append(f)
        new = []
        for bx, by, vx, vy in blocks:
            bx, vx = _step(bx, vx, w - size)
            by, vy = _step(by, vy, h - size)
            new.append((bx, by, vx, vy))
        blocks = new
    return out


class TestPattern(wiring.Component):
    """`o`: frames of `width` x `height`, one started every `period` clocks while `enable`."""

    __test__ = False        # not a pytest class

    def __init__(self, width, height, size, period):
        if not (8 <= size < min(width, height) * 3 // 4):
            raise ValueError(f"size must be in 8..{min(width, height) * 3 // 4 - 1}, "
                             f"not {size!r}")
        if period < width * height:
            raise ValueError(f"period {period} is shorter than a frame ({width * height})")
        self.width, self.height, self.size, self.period = width, height, size, period
        super().__init__({"enable": In(1), "o": Out(pixel_stream())})

    def elaborate(self, platform):
        m = Module()
        w, h, s = self.width, self.height, self.size
        x = Signal(range(w))
        y = Signal(range(h))
        timer = Signal(range(self.period))
        active = Signal()
        blocks = []
        for i, (bx, by, vx, vy) in enumerate(_blocks(w, h, s)):
            blocks.append((Signal(range(-16, w + 16), init=bx, name=f"b{i}x"),
                           Signal(range(-16, h + 16), init=by, name=f"b{i}y"),
                           Signal(range(-8, 9), init=vx, name=f"b{i}vx"),
                           Signal(range(-8, 9), init=vy, name=f"b{i}vy")))

        px = self.o.payload
        skin = Signal()
        eyes = Signal()
        for bx, by, _, _ in blocks:
            dx = x - bx
            dy = y - by
            inside = (x >= bx) & (x < bx + s) & (y >= by) & (y < by + s)
            band = (dy >= s // 4) & (dy < s // 4 + s // 8)
            eye = (((dx >= s // 5) & (dx < 2 * s // 5)) |
                   ((dx >= 3 * s // 5) & (dx < 4 * s // 5)))
            with m.If(inside):
                m.d.comb += skin.eq(1)
                with m.If(band & eye):
                    m.d.comb += eyes.eq(1)
        with m.If(eyes):
            m.d.comb += [px.r.eq(EYES[0]), px.g.eq(EYES[1]), px.b.eq(EYES[2])]
        with m.Elif(skin):
            m.d.comb += [px.r.eq(SKIN[0]), px.g.eq(SKIN[1]), px.b.eq(SKIN[2])]
        with m.Else():
            m.d.comb += [px.r.eq(x[2:10]), px.g.eq(y[2:10]), px.b.eq(0x40)]
        m.d.comb += [px.first.eq((x == 0) & (y == 0)), px.last.eq(x == w - 1),
                     self.o.valid.eq(active)]

        with m.If(timer == self.period - 1):
            m.d.sync += timer.eq(0)
            m.d.sync += active.eq(self.enable)
        with m.Else():
            m.d.sync += timer.eq(timer + 1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += x.eq(x + 1)
            with m.If(x == w - 1):
                m.d.sync += [x.eq(0), y.eq(y + 1)]
                with m.If(y == h - 1):
                    m.d.sync += [y.eq(0), active.eq(0)]
                    for bx, by, vx, vy in blocks:
                        for p, v, lim in ((bx, vx, w - s), (by, vy, h - s)):
                            with m.If(((p + v) < 0) | ((p + v) > lim)):
                                m.d.sync += [p.eq(p - v), v.eq(-v)]
                            with m.Else():
                                m.d.sync += p.eq(p + v)
        return m
