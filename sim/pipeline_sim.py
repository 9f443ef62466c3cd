"""The whole pipeline (`Anonymizer`) as a Verilator model, configured like `PipelineModel`.

`process_frames(frames, cfg)` pushes frames through the RTL. `paced=True` (the default) lets
the detector finish each analysis before the next frame starts, as a camera slower than the
engine would; `paced=False` streams frames back to back (the detector then overruns and the
pipeline fails closed).
"""


from obscura.hw.anonymizer import Anonymizer
from obscura.hw.detector_model import DetectorParams
from obscura.hw.mask_model import frames_to_stream, stream_to_frames
from obscura.hw.pipeline_model import PipelineConfig
from obscura.hw.regs import anonymizer_register_map
from obscura.hw.types import BLOCK_SIZES

from .verilator import VerilatorStream, build_model

__all__ = ["PipelineSim", "pipeline_writes"]

STATUS_DET_BUSY = 1 << 3


def pipeline_writes(cfg: PipelineConfig, num_zones=8):
    """Return the (offset, value) register writes that put `cfg` into the pipeline."""
    regs = {r.name: r.offset for r in anonymizer_register_map(num_zones=num_zones)}
    r, g, b = (int(c) for c in cfg.color)
    writes = [
        (regs["CONTROL"], int(cfg.mode) | (int(cfg.shape) << 2) |
         (BLOCK_SIZES.index(cfg.block) << 3) | (int(cfg.enable) << 8) |
         (int(cfg.fail_open) << 9)),
        (regs["COLOR"], r | (g << 8) | (b << 16)),
        (regs["TRACK"], cfg.margin | (cfg.hold << 8)),
        (regs["DETECT"], cfg.min_neighbors | ((cfg.threshold_offset & 0xFF) << 8)),
    ]
    if len(cfg.zones) > num_zones:
        raise ValueError(f"at most {num_zones} zones")
    for i in range(num_zones):
        if i < len(cfg.zones):
            x0, y0, x1, y1 = (int(v) for v in cfg.zones[i])
            writes += [(regs[f"ZONE{i}_A"], x0 | (y0 << 16)),
                       (regs[f"ZONE{i}_B"], x1 | (y1 << 16) | (1 << 31))]
        else:
            writes.append((regs[f"ZONE{i}_B"], 0))
    return writes


class PipelineSim:
    """Build (once) and open the Verilator model of `Anonymizer`."""

    def __init__(self, width=1280, height=720, cascade="frontalface_default", params=None,
                 quiet=False, max_detections=32, detect_every=1):
        self.width, self.height = width, height
        self.params = params or DetectorParams()
        self.detect_every = detect_every
        self.regs = {r.name: r.offset for r in anonymizer_register_map()}
        key = (width, height, cascade, self.params) + (
            (max_detections,) if max_detections != 32 else ()) + (
            (("every", detect_every),) if detect_every != 1 else ())
        lib = build_model("anonymizer", lambda: Anonymizer(
            width, height, cascade, self.params, max_detections=max_detections,
            detect_every=detect_every), key, quiet=quiet)
        self.dev = VerilatorStream(lib)

    def configure(self, cfg):
        for offset, value in pipeline_writes(cfg):
            self.dev.write_reg(offset, value)

    def read(self, name):
        return self.dev.read_reg(self.regs[name])

    def wait_detector(self, step=20000, limit=500_000_000):
        """Clock until the detector has finished its analysis."""
        waited = 0
        while self.read("STATUS") & STATUS_DET_BUSY:
            self.dev.idle(step)
            waited += step
            if waited > limit:
                raise RuntimeError("the detector did not finish within the cycle limit")

    def process_frames(self, frames, cfg=None, paced=True, **kw):
        """Return the output frames (RGB) for a list of RGB frames."""
        if cfg is not None:
            self.configure(cfg)
        out = []
        for frame in frames:
            rgb, first, last = frames_to_stream([frame])
            got, _, _, info = self.dev.stream(rgb[:, ::-1], first, last, **kw)
            if len(got) != len(rgb):
                raise RuntimeError(f"the pipeline gave {len(got)} of {len(rgb)} pixels")
            out.extend(stream_to_frames(got[:, ::-1], [frame]))
            if paced:
                self.wait_detector()
        return out
