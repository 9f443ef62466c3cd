"""Display timings (a frozen dataclass per modeline) and a raster timing generator.

A line is `h_active` pixels of picture, then front porch, sync pulse and back porch; a frame
is `v_active` such lines, then the vertical front porch, sync and back porch lines. The
generator counts (x, y) over the whole raster and reports `de` (picture), `hsync`, `vsync`
(already at their polarity) and `frame_start`/`line_start` strobes one clock ahead of the
first active pixel of a frame/line. `hold` keeps the generator on the last line of the
vertical blanking (it repeats that line, hsync still running): the output framer uses it to
lock the display's frame to the camera's (no frame buffer on the video path). With
`start_in_blanking` the generator starts on that line, so even the first frame after reset
waits for `hold`.
"""

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["VideoTiming", "CEA_720P60", "CEA_720P30", "TimingGenerator", "timing_model"]


@dataclass(frozen=True)
class VideoTiming:
    """A modeline. Polarities: True means the sync pulse is high."""
    h_active: int
    h_front: int
    h_sync: int
    h_back: int
    v_active: int
    v_front: int
    v_sync: int
    v_back: int
    pixel_hz: float
    h_pol: bool = True
    v_pol: bool = True
    name: str = ""

    def __post_init__(self):
        for f in ("h_active", "h_front", "h_sync", "h_back", "v_active", "v_front", "v_sync",
                  "v_back"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{f} must be a positive integer, not {v!r}")

    @property
    def h_total(self):
        return self.h_active + self.h_front + self.h_sync + self.h_back

    @property
    def v_total(self):
        return self.v_active + self.v_front + self.v_sync + self.v_back

    @property
    def frame_hz(self):
        return self.pixel_hz / (self.h_total * self.v_total)

    @property
    def line_seconds(self):
        return self.h_total / self.pixel_hz


#: CEA-861 VIC 4, 1280x720p60 at 74.25 MHz.
CEA_720P60 = VideoTiming(1280, 110, 40, 220, 720, 5, 5, 20, 74.25e6, name="720p60 (CEA VIC 4)")
#: CEA-861 VIC 62, 1280x720p30 at 74.25 MHz (the 720p60 raster with a 1760-pixel front porch).
CEA_720P30 = VideoTiming(1280, 1760, 40, 220, 720, 5, 5, 20, 74.25e6, name="720p30 (CEA VIC 62)")


class TimingGenerator(wiring.Component):
    """Raster counters for `timing`; outputs registered (valid for the pixel at `x`, `y`)."""

    def __init__(self, timing: VideoTiming, start_in_blanking=False):
        self.timing = timing
        self.start_in_blanking = start_in_blanking
        t = timing
        super().__init__({
            "hold": In(1),
            "x": Out(range(t.h_total)),
            "y": Out(range(t.v_total), init=t.v_total - 1 if start_in_blanking else 0),
            "de": Out(1), "hsync": Out(1), "vsync": Out(1),
            # One clock before the first active pixel of a line / of a frame.
            "line_start": Out(1), "frame_start": Out(1),
            # The generator is on the last blanking line, about to start a frame.
            "at_frame_end": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        t = self.timing
        x, y = self.x, self.y
        h_sync0 = t.h_active + t.h_front
        v_sync0 = t.v_active + t.v_front
        last_x = x == t.h_total - 1
        last_y = y == t.v_total - 1
        with m.If(last_x):
            m.d.sync += x.eq(0)
            with m.If(last_y):
                with m.If(~self.hold):
                    m.d.sync += y.eq(0)
            with m.Else():
                m.d.sync += y.eq(y + 1)
        with m.Else():
            m.d.sync += x.eq(x + 1)
        m.d.comb += [
            self.de.eq((x < t.h_active) & (y < t.v_active)),
            self.hsync.eq(((x >= h_sync0) & (x < h_sync0 + t.h_sync)) == t.h_pol),
            self.vsync.eq(((y >= v_sync0) & (y < v_sync0 + t.v_sync)) == t.v_pol),
            self.at_frame_end.eq(last_y),
            self.line_start.eq(last_x & ((y < t.v_active - 1) | (last_y & ~self.hold))),
            self.frame_start.eq(last_x & last_y & ~self.hold),
        ]
        return m


def timing_model(timing: VideoTiming, frames=1):
    """Return (de, hsync, vsync) arrays of `frames` whole frames, one entry per pixel clock,
    starting at the first active pixel (x = y = 0) with `hold` never set."""
    t = timing
    x = np.arange(t.h_total)
    y = np.arange(t.v_total)
    hs0, vs0 = t.h_active + t.h_front, t.v_active + t.v_front
    hde = x < t.h_active
    vde = y < t.v_active
    hs = ((x >= hs0) & (x < hs0 + t.h_sync)) == t.h_pol
    vs = ((y >= vs0) & (y < vs0 + t.v_sync)) == t.v_pol
    de = (vde[:, None] & hde[None, :]).ravel()
    hsync = np.broadcast_to(hs[None, :], (t.v_total, t.h_total)).ravel()
    vsync = np.broadcast_to(vs[:, None], (t.v_total, t.h_total)).ravel()
    return np.tile(de, frames), np.tile(hsync, frames), np.tile(vsync, frames)
