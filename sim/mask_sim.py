"""The mask top as a Verilator model, configured with the model's `MaskConfig`."""

import numpy as np

from obscura.hw.mask import latency_cycles
from obscura.hw.mask_model import MaskConfig
from obscura.hw.mask_top import MaskTop
from obscura.hw.regs import register_map
from obscura.hw.types import BLOCK_SIZES, Geometry

from .verilator import VerilatorStream, build_model

__all__ = ["MaskSim", "config_writes"]


def config_writes(cfg: MaskConfig, num_boxes=32, num_zones=8):
    """Return the (offset, value) register writes that put `cfg` into the mask top."""
    regs = {r.name: r.offset for r in register_map(num_boxes, num_zones)}
    if len(cfg.boxes) > num_boxes or len(cfg.zones) > num_zones:
        raise ValueError(f"at most {num_boxes} boxes and {num_zones} zones")
    r, g, b = (int(c) for c in cfg.color)
    writes = [
        (regs["CONTROL"], int(cfg.mode) | (int(cfg.shape) << 2)
         | (BLOCK_SIZES.index(cfg.block) << 3)),
        (regs["COLOR"], r | (g << 8) | (b << 16)),
    ]
    for prefix, items, count in (("BOX", cfg.boxes, num_boxes), ("ZONE", cfg.zones, num_zones)):
        for i in range(count):
            if i < len(items):
                x0, y0, x1, y1 = (int(v) for v in items[i])
                writes += [(regs[f"{prefix}{i}_A"], x0 | (y0 << 16)),
                           (regs[f"{prefix}{i}_B"], x1 | (y1 << 16) | (1 << 31))]
            else:
                writes += [(regs[f"{prefix}{i}_B"], 0)]
    return writes


class MaskSim:
    """Build (once) and open the Verilator model of `MaskTop`."""

    def __init__(self, geometry=Geometry(), num_boxes=32, num_zones=8, quiet=False):
        self.geometry, self.num_boxes, self.num_zones = geometry, num_boxes, num_zones
        params = (geometry.max_width, geometry.max_height, num_boxes, num_zones)
        name = "mask_top"
        lib = build_model(name, lambda: MaskTop(geometry, num_boxes, num_zones), params,
                          quiet=quiet)
        self.dev = VerilatorStream(lib)
        self.dev_latency = latency_cycles(num_boxes + num_zones)

    def configure(self, cfg):
        for offset, value in config_writes(cfg, self.num_boxes, self.num_zones):
            self.dev.write_reg(offset, value)

    def process_stream(self, rgb, first, last, **kw):
        """Like `MaskModel.process_stream` (RGB order): return (rgb_out, info)."""
        out, _, _, info = self.dev.stream(np.asarray(rgb)[:, ::-1], first, last, **kw)
        return out[:, ::-1], info
