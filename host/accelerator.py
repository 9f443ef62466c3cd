"""The host API: one accelerator object over a transport (backend).

    import obscura
    with obscura.open("sim") as acc:          # or "model", or "pynq:overlay.bit"
        acc.configure(mode="blur", margin=40)
        out = acc.process(frame)              # numpy uint8 H x W x 3, BGR in and out

Backends:

* `sim`: the Verilator model of the whole RTL pipeline (`hw/anonymizer.py`), built on first use
  for each frame size into `build/verilator/`; the output is exactly what the chip outputs.
  Frames are paced: the detector finishes each analysis before the next frame enters, as with a
  camera slower than the engine.
* `model`: the composed numpy model (`hw/pipeline_model.py`), bit-exact with `sim` and faster.
* `pynq` or `pynq:PATH/obscura.bit`: a PYNQ board with the overlay over AXI DMA
  (`host/pynq_backend.py`); frames must have the size the overlay was built for. Without the
  `pynq` package or a board it raises `BackendError`.

The chip masks frame k with the detections of frames up to k - 2 (the detector analyses one
frame while the next streams in), and fills frames 0 and 1 after a reset entirely. `process`
therefore returns a filled frame for the first two frames of a stream; `process_image` runs a
still image three times so its own detections are applied, and returns the third output.
"""

from dataclasses import replace

from .errors import ObscuraError

__all__ = ["open", "Accelerator", "BackendError", "BACKENDS"]

BACKENDS = ("sim", "model", "pynq")
MODES = {"mosaic": 0, "blur": 1, "solid": 2}
SHAPES = {"box": 0, "ellipse": 1}


class BackendError(ObscuraError):
    """The backend cannot be used here (missing toolchain, board or overlay)."""


def _downscale(width):
    from .cli import auto_downscale
    return auto_downscale(width)


class Accelerator:
    """An anonymizer over one backend; use `obscura.open()`."""

    def __init__(self, backend="sim", cascade="frontalface_default", quiet=False, **options):
        if backend.split(":", 1)[0] not in BACKENDS:
            raise BackendError(f"unknown backend {backend!r}: choose one of "
                               f"{', '.join(BACKENDS)}")
        if backend.startswith("pynq"):
            from .pynq_backend import load_pynq
            load_pynq()                  # BackendError now, not at the first frame
        elif options:
            raise BackendError(f"options {', '.join(options)} are for the pynq backend")
        #: Backend options: `dma_timeout`, `detector_timeout` (seconds) for `pynq`.
        self.options = options
        from obscura.hw.pipeline_model import PipelineConfig
        self.backend, self.cascade, self.quiet = backend, cascade, quiet
        self.config = PipelineConfig()
        self._dev = None
        self._size = None
        self.frames = 0
        #: One record per processed frame (no pixels): tracked boxes, whether it was filled
        #: entirely (fail closed) and why.
        self.frame_log = []

    # ------------------------------------------------------------------ context manager
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._dev is not None and self.backend.startswith("pynq"):
            self._dev.close()                 # the contiguous buffers
        self._dev = None

    # ------------------------------------------------------------------ settings
    def configure(self, mode=None, shape=None, block=None, color=None, margin=None,
                  hold=None, zones=None, min_neighbors=None, threshold_offset=None,
                  enable=None):
        """Set registers; `None` leaves a setting as it is. `color` is (r, g, b)."""
        from obscura.hw.types import BLOCK_SIZES, Mode, Shape
        changes = {}
        if mode is not None:
            if mode not in MODES:
                raise ObscuraError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
            changes["mode"] = Mode(MODES[mode])
        if shape is not None:
            if shape not in SHAPES:
                raise ObscuraError(f"shape must be one of {', '.join(SHAPES)}, not {shape!r}")
            changes["shape"] = Shape(SHAPES[shape])
        if block is not None:
            if block not in BLOCK_SIZES:
                raise ObscuraError(f"block must be one of {BLOCK_SIZES}, not {block!r}")
            changes["block"] = block
        if color is not None:
            if len(color) != 3 or not all(0 <= int(c) <= 255 for c in color):
                raise ObscuraError(f"color must be three values 0..255, not {color!r}")
            changes["color"] = tuple(int(c) for c in color)
        for name, value, hi in (("margin", margin, 255), ("hold", hold, 255),
                                ("min_neighbors", min_neighbors, 255)):
            if value is not None:
                if not 0 <= int(value) <= hi:
                    raise ObscuraError(f"{name} must be in 0..{hi}, not {value!r}")
                changes[name] = int(value)
        if threshold_offset is not None:
            if not -128 <= int(threshold_offset) <= 127:
                raise ObscuraError(f"threshold_offset must be in -128..127, not "
                                   f"{threshold_offset!r}")
            changes["threshold_offset"] = int(threshold_offset)
        if zones is not None:
            if len(zones) > 8:
                raise ObscuraError(f"at most 8 privacy zones, not {len(zones)}")
            changes["zones"] = [tuple(int(v) for v in z) for z in zones]
        if enable is not None:
            changes["enable"] = bool(enable)
        self.config = replace(self.config, **changes)
        if self._dev is not None and self.backend != "model":
            self._dev.configure(self.config)

    # ------------------------------------------------------------------ frames
    def _device_for(self, width, height):
        if self._size == (width, height):
            return self._dev
        from obscura.hw.detector_model import DetectorParams
        params = DetectorParams(downscale=_downscale(width),
                                min_neighbors=self.config.min_neighbors)
        if self.backend == "model":
            from obscura.hw.pipeline_model import PipelineModel
            dev = PipelineModel(width, height, self.cascade, params)
        elif self.backend.startswith("pynq"):
            from .pynq_backend import PynqDevice, overlay_path
            if self._dev is not None:
                self._dev.close()
            dev = PynqDevice(overlay_path(self.backend), width, height, **self.options)
            dev.configure(self.config)
        else:
            from obscura.sim.pipeline_sim import PipelineSim
            try:
                dev = PipelineSim(width, height, self.cascade, params, quiet=self.quiet)
            except ObscuraError:
                raise
            except Exception as exc:          # the detector cannot be built for this size
                raise ObscuraError(f"cannot build the pipeline for {width}x{height} frames: "
                                   f"{exc}") from exc
            dev.configure(self.config)
        self._dev, self._size = dev, (width, height)
        self.frames = 0
        return dev

    def process(self, frame):
        """Anonymize one BGR frame (the next of a stream); return the output BGR frame."""
        import numpy as np
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ObscuraError(f"expected a uint8 H x W x 3 BGR frame, got {frame.dtype} "
                               f"{frame.shape}")
        h, w = frame.shape[:2]
        if not (48 <= w <= 4095 and 48 <= h <= 4095):
            raise ObscuraError(f"frame size {w}x{h} is outside 48..4095 pixels per side")
        dev = self._device_for(w, h)
        rgb = np.ascontiguousarray(frame[..., ::-1])
        if self.backend == "model":
            out = dev.process_frames([rgb], self.config)[0]
            filled = dev.masks[-1][0]
        else:
            before = dev.read("FAILED_CLOSED")
            out = dev.process_frames([rgb])[0]
            filled = dev.read("FAILED_CLOSED") != before
        reason = None
        if filled:
            reason = ("disabled" if not self.config.enable else
                      "startup: no frame analysed yet" if self.frames < 2 else
                      "the detector could not vouch for the frame before last (overrun, "
                      "malformed frame or more faces than the tracker takes)")
        self.frame_log.append({"boxes": len(self.boxes), "fail_closed": bool(filled),
                               "reason": reason})
        self.frames += 1
        return np.ascontiguousarray(out[..., ::-1])

    def process_image(self, frame):
        """Anonymize a still image with its own detections: reset, run it three times (the
        detections of frame 0 mask frame 2), return the third output."""
        self.reset()
        out = None
        for _ in range(3):
            out = self.process(frame)
        return out

    def process_video(self, frames):
        """Yield the anonymized frame for each BGR frame of an iterable."""
        for frame in frames:
            yield self.process(frame)

    def reset(self):
        """Back to the state after power-up (the next two frames are filled)."""
        if self._dev is not None:
            if self.backend == "model":
                self._dev.reset()
            else:
                if self.backend == "sim":
                    self._dev.dev.reset()
                else:
                    self._dev.reset()
                self._dev.configure(self.config)
        self.frames = 0

    # ------------------------------------------------------------------ read-back
    @property
    def boxes(self):
        """Tracker slots in use: [(x0, y0, x1, y1)] in input pixels."""
        if self._dev is None:
            return []
        if self.backend == "model":
            return [s.box() for s in self._dev.tracker.slots if s.valid]
        out = []
        for i in range(32):
            a, b = self._dev.read(f"SLOT{i}_A"), self._dev.read(f"SLOT{i}_B")
            if b >> 31:
                out.append((a & 0xFFF, a >> 16 & 0xFFF, b & 0xFFF, b >> 16 & 0xFFF))
        return out

    @property
    def stats(self):
        """Counters and fault flags."""
        if self._dev is None:
            return {"frames": 0}
        if self.backend == "model":
            m = self._dev
            return {"frames": len(m.results), "failed_closed": sum(f for f, _ in m.masks),
                    "detector_frames": sum(1 for _, ok in m.results if ok)}
        d = self._dev
        return {"frames": d.read("FRAMES"), "failed_closed": d.read("FAILED_CLOSED"),
                "detector_frames": d.read("DET_FRAMES"),
                "detector_overruns": d.read("DET_OVERRUNS"),
                "detector_bad_frames": d.read("DET_BAD"),
                "detector_cycles_last": d.read("DET_CYCLES"),
                "protocol_errors": d.read("ERRORS")}


def open(backend="sim", **kwargs):       # noqa: A001 - the API's name, like io.open
    """Return an `Accelerator` over `backend` ("sim", "model" or "pynq:overlay.bit")."""
    return Accelerator(backend, **kwargs)


