"""Stream, region and geometry types shared by every block (the brief's stream contract)."""


from dataclasses import dataclass

from amaranth.hdl import unsigned
from amaranth.lib import data, enum, stream

__all__ = ["COORD_BITS", "Pixel", "Region", "Mode", "Shape", "Geometry", "pixel_stream",
           "BLOCK_SIZES"]

#: Width of every pixel coordinate register: frames up to 4095 x 4095.
COORD_BITS = 12

#: Mosaic / blur block sizes the mask unit supports (a power of two keeps the divisions shifts).
BLOCK_SIZES = (8, 16, 32)


class Pixel(data.Struct):
    """One pixel beat: 8-bit colour, `first` = first pixel of a frame (AXI4-Stream video tuser),
    `last` = last pixel of a line (tlast)."""
    r: 8
    g: 8
    b: 8
    first: 1
    last: 1


class Region(data.Struct):
    """A rectangle in full-resolution pixels, half-open: x0 <= x < x1, y0 <= y < y1."""
    x0: COORD_BITS
    y0: COORD_BITS
    x1: COORD_BITS
    y1: COORD_BITS
    enable: 1


class Mode(enum.IntEnum, shape=unsigned(2)):
    MOSAIC = 0
    BLUR = 1
    SOLID = 2


class Shape(enum.IntEnum, shape=unsigned(1)):
    BOX = 0
    ELLIPSE = 1


def pixel_stream():
    """The pixel stream signature (valid/ready, one `Pixel` per beat)."""
    return stream.Signature(Pixel)


@dataclass(frozen=True)
class Geometry:
    """Elaboration-time frame limits; the actual size of each frame comes from the stream."""
    max_width: int = 1280
    max_height: int = 720

    def __post_init__(self):
        for name in ("max_width", "max_height"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value < 2 ** COORD_BITS:
                raise ValueError(f"{name} must be an integer in 1..{2 ** COORD_BITS - 1}, "
                                 f"not {value!r}")
