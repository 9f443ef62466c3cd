"""Bit-exact numpy model of the mask unit: the specification its RTL (`mask.py`) is tested against.

Behaviour, in the order a pixel meets it (docs/architecture.md explains the choices):

* **Geometry and protocol.** A frame starts at a pixel with `first`; lines end at `last`. A
  *consistent* frame (every line as long as its line 0, within the elaboration maximums, ended
  on a line end) teaches the unit the expected geometry (W, H). A frame is *vouched* only if a
  geometry was expected at its start; every pixel of an unvouched frame (the first after reset)
  is the fill colour (fail closed). A protocol error (pixel before any `first`, a line of another
  length than expected, more lines than expected, a frame cut short at the next `first`, a size
  beyond the maximum) is counted and fills the rest of its frame; the unit recovers at the next
  `first`, except after a `first` in the middle of a line: that frame is filled whole, since
  its pixels would be masked in coordinates that no longer match the scene. Block means come
  only from frames without any error.
* **Regions.** Up to `num_boxes` boxes and `num_zones` privacy zones, half-open rectangles. Boxes
  take the configured shape (rectangle or inscribed ellipse); zones are always rectangles. The
  ellipse is evaluated per line as an x-span with integer arithmetic (`region_span`).
* **Effects** inside any region use the block means of the *previous* frame (one block-mean store
  per frame, no line delay on the video path): `mosaic` shows the mean of the pixel's block,
  `blur` bilinearly interpolates the block means between block centres (a low-pass of width
  about two blocks), `solid` shows the fill colour. Without valid means (first vouched frame,
  block size changed) regions show the fill colour.
"""

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .types import BLOCK_SIZES, Geometry, Mode, Shape

__all__ = ["MaskConfig", "MaskModel", "RECIP", "SQRT_PROFILE", "region_span", "block_means",
           "frames_to_stream", "stream_to_frames"]

#: floor(2**16 / n): the reciprocal ROM used for block means (n = pixels in a block, <= 1024)
#: and ellipse heights (n = box height, < 4096). RECIP[0] is unused.
RECIP = np.array([0] + [(1 << 16) // n for n in range(1, 4096)], dtype=np.int64)
#: floor(256 * sqrt(1 - (t/256)**2)) for t in 0..255: the quarter-ellipse profile ROM (9 bits).
SQRT_PROFILE = np.array([math.isqrt(65536 - t * t) for t in range(256)], dtype=np.int64)


@dataclass
class MaskConfig:
    """Per-frame settings, latched by the unit at each frame's `first` pixel."""
    mode: Mode = Mode.MOSAIC
    shape: Shape = Shape.BOX
    block: int = 16
    color: tuple = (0, 0, 0)  # (r, g, b) of the fill colour
    boxes: list = field(default_factory=list)  # (x0, y0, x1, y1), half-open
    zones: list = field(default_factory=list)
    fail_closed: bool = False  # fill the whole frame (the pipeline cannot vouch for it)

    def __post_init__(self):
        if self.block not in BLOCK_SIZES:
            raise ValueError(f"block must be one of {BLOCK_SIZES}, not {self.block!r}")
        self.mode = Mode(self.mode)
        self.shape = Shape(self.shape)
        if len(self.color) != 3 or not all(0 <= int(c) <= 255 for c in self.color):
            raise ValueError(f"color must be three values in 0..255, not {self.color!r}")

    def regions(self):
        """Yield (x0, y0, x1, y1, shape) of every region the unit evaluates."""
        for box in self.boxes:
            yield (*map(int, box), self.shape)
        for zone in self.zones:
            yield (*map(int, zone), Shape.BOX)


def region_span(x0, y0, x1, y1, shape, y):
    """Return the half-open x-span [lo, hi) a region covers on line `y` (lo == hi: none).

    Ellipse (the one inscribed in the box), in half-pixel units from the box centre:
    v = |2y + 1 - (y0 + y1)|, t = (v * RECIP[h]) >> 8 (8-bit, v/h in [0, 1)),
    half-width hw = (w * SQRT_PROFILE[t]) >> 8, and pixel x is inside iff
    |2x + 1 - (x0 + x1)| <= hw.
    """
    if not (x0 < x1 and y0 < y1 and y0 <= y < y1):
        return 0, 0
    if shape == Shape.BOX:
        return x0, x1
    h, w = y1 - y0, x1 - x0
    v = abs(2 * y + 1 - (y0 + y1))
    t = (v * int(RECIP[h])) >> 8
    hw = (w * int(SQRT_PROFILE[t])) >> 8
    return (x0 + x1 - hw) >> 1, (x0 + x1 + hw + 1) >> 1


def block_means(frame, block):
    """Return the per-block mean colour (nby, nbx, 3) as the unit stores it.

    mean = (sum * RECIP[n]) >> 16 with n the block's pixel count (edge blocks may be partial):
    the floor of the true mean for full blocks, at most 1 + 255 n / 2^16 below it otherwise.
    """
    h, w, _ = frame.shape
    nby, nbx = -(-h // block), -(-w // block)
    padded = np.zeros((nby * block, nbx * block, 3), dtype=np.int64)
    padded[:h, :w] = frame
    sums = padded.reshape(nby, block, nbx, block, 3).sum(axis=(1, 3))
    bh = np.minimum(block, h - np.arange(nby) * block)
    bw = np.minimum(block, w - np.arange(nbx) * block)
    n = bh[:, None] * bw[None, :]
    return (sums * RECIP[n][:, :, None]) >> 16


def effect_colours(mode, block, means, xs, y):
    """Return the effect colour (len(xs), 3) for pixels xs on line y from the previous means."""
    k = block.bit_length() - 1
    nby, nbx, _ = means.shape
    if mode == Mode.MOSAIC:
        return means[y >> k, xs >> k]

    def axis(coord, count):
        f = coord - block // 2
        b0 = np.where(f < 0, 0, f >> k)
        wgt = np.where(f < 0, 0, f & (block - 1))
        last = b0 >= count - 1
        b0 = np.where(last, count - 1, b0)
        wgt = np.where(last, 0, wgt)
        return b0, np.minimum(b0 + 1, count - 1), wgt

    by0, by1, wy = axis(np.int64(y), nby)
    bx0, bx1, wx = axis(xs.astype(np.int64), nbx)
    wx = wx[:, None]
    top = means[by0, bx0] * (block - wx) + means[by0, bx1] * wx
    bot = means[by1, bx0] * (block - wx) + means[by1, bx1] * wx
    return (top * (block - wy) + bot * wy + (block * block >> 1)) >> (2 * k)


class MaskModel:
    """The mask unit as a stream-in, stream-out function with the unit's state across calls.
    `min_block`: as `MaskUnit`'s (a smaller `block` setting acts as `min_block`)."""

    def __init__(self, geometry=Geometry(), num_boxes=32, num_zones=8, min_block=BLOCK_SIZES[0]):
        if min_block not in BLOCK_SIZES:
            raise ValueError(f"min_block must be one of {BLOCK_SIZES}, not {min_block!r}")
        self.geometry = geometry
        self.num_boxes = num_boxes
        self.num_zones = num_zones
        self.min_block = min_block
        self.reset()

    def reset(self):
        """Return to the state after a hardware reset."""
        self.synced = False
        self.err_in_frame = False
        self.geom = None           # (W, H) expected: learned from the last consistent frame
        self.width0 = None         # width of line 0 of the current frame
        self.consistent = True     # the current frame's lines all have that width so far
        self.x_next = self.y_next = 0
        self.protocol_errors = 0
        self.frames = 0            # frame starts seen
        self.cfg = None
        self.frame_ok = False
        self.means = None          # block means of the last clean frame
        self.means_block = None
        self.means_valid = False
        self.rows = []             # pixel rows of the current frame (for its block means)

    def _start_frame(self, config):
        if config.block < self.min_block:
            config = replace(config, block=self.min_block)
        ended = self.synced and self.x_next == 0 and self.y_next >= 1
        prev_complete = (ended and not self.err_in_frame
                         and (self.geom is None or self.y_next == self.geom[1]))
        if self.synced and not prev_complete and not self.err_in_frame:
            self.protocol_errors += 1
        # A `first` in the middle of a line: the new frame is filled whole (its pixels would be
        # masked in coordinates that no longer match the scene).
        cut_mid_line = self.synced and self.x_next != 0
        if ended and self.consistent:
            # A self-consistent frame teaches the geometry, even one that was not expected
            # (a resolution change); an inconsistent one leaves the expectation as it was.
            self.geom = (self.width0, self.y_next)
        if prev_complete:
            self.means = block_means(np.stack(self.rows), self.cfg.block)
            self.means_block = self.cfg.block
        else:
            self.means = None
        self.cfg = config
        if len(config.boxes) > self.num_boxes or len(config.zones) > self.num_zones:
            raise ValueError(f"at most {self.num_boxes} boxes and {self.num_zones} zones")
        self.frame_ok = self.geom is not None and not config.fail_closed
        self.means_valid = prev_complete and self.means_block == config.block
        self.width0 = None
        self.consistent = True
        self.synced, self.err_in_frame = True, cut_mid_line
        self.x_next = self.y_next = 0
        self.rows = []
        self.frames += 1

    def _segment(self, rgb, last):
        """Process one run of pixels on one line (only its final pixel may carry `last`)."""
        n = len(rgb)
        out = np.empty_like(rgb)
        fill = np.array(self.cfg.color if self.cfg else (0, 0, 0), dtype=np.uint8)
        x = self.x_next + np.arange(n)
        y = self.y_next
        g = self.geometry
        # Self-consistency: every line as long as this frame's line 0, within the maximums.
        self_bad = (x >= g.max_width) | (y >= g.max_height)
        if self.width0 is not None:
            self_bad |= x >= self.width0
            if last:
                self_bad[-1] |= x[-1] != self.width0 - 1
        # Expectation: the geometry learned from earlier frames.
        exp_bad = np.zeros(n, bool)
        if self.geom is not None:
            width, height = self.geom
            exp_bad |= (x >= width) | (y >= height)
            if last:
                exp_bad[-1] |= x[-1] != width - 1
        bad = self_bad | exp_bad | (not self.synced)
        if self.synced:
            if self.consistent and y == 0 and last and not self_bad.any():
                self.width0 = self.x_next + n
            self.consistent = self.consistent and not self_bad.any()
        err_at = int(np.argmax(bad)) if bad.any() else n
        if self.err_in_frame:
            err_at = 0
        elif err_at < n:
            self.protocol_errors += 1
            self.err_in_frame = True
        good = slice(0, err_at)
        out[err_at:] = fill
        if self.frame_ok:
            out[good] = self._line(rgb[good], x[good], y)
        else:
            out[good] = fill
        if not self.err_in_frame:
            if self.x_next == 0:
                self.rows.append(rgb)
            else:
                self.rows[-1] = np.concatenate([self.rows[-1], rgb])
        if last:
            self.x_next, self.y_next = 0, y + 1
        else:
            self.x_next += n
        return out

    def _line(self, rgb, xs, y):
        cfg = self.cfg
        hit = np.zeros(len(xs), bool)
        for x0, y0, x1, y1, shape in cfg.regions():
            lo, hi = region_span(x0, y0, x1, y1, shape, y)
            hit |= (xs >= lo) & (xs < hi)
        out = rgb.copy()
        if not hit.any():
            return out
        if cfg.mode == Mode.SOLID or not self.means_valid:
            out[hit] = cfg.color
        else:
            out[hit] = effect_colours(cfg.mode, cfg.block, self.means, xs[hit], y)
        return out

    def process_stream(self, rgb, first, last, config):
        """Return the output colours (N, 3) for a pixel stream (N, 3) with its flags.

        `config` is a MaskConfig, or a callable taking the frame number (counted from reset)
        and returning the MaskConfig latched at that frame's `first`.
        """
        rgb = np.asarray(rgb, dtype=np.uint8)
        first = np.asarray(first, dtype=bool)
        last = np.asarray(last, dtype=bool)
        get = config if callable(config) else (lambda _n: config)
        cuts = np.unique(np.concatenate([[0, len(rgb)], np.flatnonzero(first),
                                         np.flatnonzero(last) + 1]))
        out = np.empty_like(rgb)
        for a, b in zip(cuts[:-1], cuts[1:]):
            if first[a]:
                self._start_frame(get(self.frames))
            out[a:b] = self._segment(rgb[a:b], bool(last[b - 1]))
        return out

    def process_frames(self, frames, config):
        """Return the output frames for a list of clean (H, W, 3) RGB frames."""
        rgb, first, last = frames_to_stream(frames)
        return stream_to_frames(self.process_stream(rgb, first, last, config), frames)


def frames_to_stream(frames):
    """Flatten (H, W, 3) frames into a pixel stream: (rgb, first, last)."""
    rgb, first, last = [], [], []
    for f in frames:
        h, w, _ = f.shape
        rgb.append(f.reshape(-1, 3))
        fl = np.zeros(h * w, bool)
        fl[0] = True
        first.append(fl)
        ll = np.zeros((h, w), bool)
        ll[:, -1] = True
        last.append(ll.reshape(-1))
    return np.concatenate(rgb), np.concatenate(first), np.concatenate(last)


def stream_to_frames(rgb, like):
    """Split a flat pixel stream back into frames shaped like `like`."""
    out, i = [], 0
    for f in like:
        n = f.shape[0] * f.shape[1]
        out.append(rgb[i:i + n].reshape(f.shape))
        i += n
    return out
