"""Bit-exact model of the whole pipeline (`Anonymizer`): detector model, tracker model and mask
model composed with the RTL's timing rules (docs/architecture.md).

Frame k is masked with the tracker state after the detections of frames up to k - 2; frames 0
and 1 after reset, and any frame whose k - 2 analysis was not complete (overrun, malformed
input, cluster overflow) or saturated the tracker, are filled entirely unless `fail_open`.
With `detect_every` = P > 1 only frames 0, P, 2P, ... are analysed, and the analysis of frame a
masks frames a + P + 1 .. a + 2P (P = 1: frame a + 2); frames 0 .. P are filled.
The model assumes the detector finished every analysis in time: the RTL reports an overrun
otherwise, and then fails closed where the model would not (never the other way round).
"""

from dataclasses import dataclass, field, replace

from .cascade import load_cascade
from .detector_model import DetectorParams, detect
from .mask_model import MaskConfig, MaskModel
from .tracker_model import TrackerModel
from .types import BLOCK_SIZES, Geometry, Mode, Shape

__all__ = ["PipelineConfig", "PipelineModel"]


@dataclass(frozen=True)
class PipelineConfig:
    mode: Mode = Mode.MOSAIC
    shape: Shape = Shape.BOX
    block: int = 16
    color: tuple = (0, 0, 0)
    margin: int = 30
    hold: int = 15
    min_neighbors: int = 3
    threshold_offset: int = 0
    enable: bool = True
    fail_open: bool = False
    zones: list = field(default_factory=list)


class PipelineModel:
    def __init__(self, width, height, cascade="frontalface_default", params=None,
                 num_slots=32, num_zones=8, max_detections=32, min_block=BLOCK_SIZES[0],
                 detect_every=1):
        self.width, self.height = width, height
        self.detect_every = detect_every
        self.cascade = load_cascade(cascade) if isinstance(cascade, str) else cascade
        self.params = params or DetectorParams()
        self.num_slots, self.num_zones = num_slots, num_zones
        self.max_detections = max_detections
        self.min_block = min_block
        self.reset()

    def reset(self):
        self.mask = MaskModel(Geometry(self.width, self.height), self.num_slots, self.num_zones,
                              self.min_block)
        self.tracker = TrackerModel(self.width, self.height, self.num_slots,
                                    self.max_detections)
        self.results = []       # per frame: (boxes, complete), None for a frame not analysed
        self.vouched = []       # per frame: the regions it was masked with were vouched
        self.masks = []         # per frame: (filled entirely, regions)
        self._published = (False, [])   # the tracker's last publication: vouched, regions

    def _config_for(self, k, cfg):
        p = self.detect_every
        if k >= p + 1 and (k - p - 1) % p == 0:    # the results of frame k - p - 1 land
            boxes, complete = self.results[k - p - 1]
            vouched = complete and not self.tracker.update(boxes, cfg.hold)
            self._published = (vouched, [r for r in self.tracker.mask_boxes(cfg.margin)
                                         if r is not None])
        vouched, regions = self._published
        self.vouched.append(vouched)
        fail_closed = not cfg.enable or not (vouched or cfg.fail_open)
        self.masks.append((fail_closed, regions))
        return MaskConfig(cfg.mode, cfg.shape, cfg.block, cfg.color, boxes=regions,
                          zones=list(cfg.zones), fail_closed=fail_closed)

    def process_frames(self, frames, cfg=PipelineConfig()):
        """Return the output frames (RGB) for a list of clean RGB frames of the built size."""
        params = replace(self.params, min_neighbors=cfg.min_neighbors,
                         threshold_offset=cfg.threshold_offset)
        out = []
        for frame in frames:
            if frame.shape[:2] != (self.height, self.width):
                raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, the pipeline "
                                 f"was built for {self.width}x{self.height}")
            k = len(self.results)
            mcfg = self._config_for(k, cfg)
            out.extend(self.mask.process_frames([frame], mcfg))
            if k % self.detect_every:
                self.results.append(None)
                continue
            det = detect(frame, self.cascade, params)
            self.results.append(([tuple(b) for b in det.boxes], det.cluster_overflow == 0))
        return out
