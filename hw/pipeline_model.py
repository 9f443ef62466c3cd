"""Bit-exact model of the whole pipeline (`Anonymizer`): detector model, tracker model and mask
model composed with the RTL's timing rules (docs/architecture.md).

Frame k is masked with the tracker state after the detections of frames up to k - 2; frames 0
and 1 after reset, and any frame whose k - 2 analysis was not complete (overrun, malformed
input, cluster overflow) or saturated the tracker, are filled entirely unless `fail_open`.
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
                 num_slots=32, num_zones=8, max_detections=32, min_block=BLOCK_SIZES[0]):
        self.width, self.height = width, height
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
        self.results = []       # per frame: (boxes, complete)
        self.vouched = []       # per frame: the regions it was masked with were vouched
        self.masks = []         # per frame: (filled entirely, regions)

    def _config_for(self, k, cfg):
        vouched = False
        if k >= 2:
            boxes, complete = self.results[k - 2]
            if complete:
                vouched = not self.tracker.update(boxes, cfg.hold)
        self.vouched.append(vouched)
        regions = [r for r in self.tracker.mask_boxes(cfg.margin) if r is not None]
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
            det = detect(frame, self.cascade, params)
            self.results.append(([tuple(b) for b in det.boxes], det.cluster_overflow == 0))
        return out
