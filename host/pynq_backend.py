"""The `pynq` backend: frames through the overlay on a PYNQ board (PYNQ-Z2, PYNQ-Z1) over AXI DMA.

    with obscura.open("pynq:/home/xilinx/obscura/obscura.bit") as acc:   # obscura.hwh beside it
        out = acc.process(frame)

One frame is one DMA transfer each way: the frame as 32-bit words (bytes B, G, R, 0, the
memory order of an OpenCV BGRA frame) from a contiguous input buffer to the IP, the anonymized
frame back into a contiguous output buffer. The IP (`hw/pynq_top.py`) is built for one frame
size, which it reports in WIDTH and HEIGHT. Per frame:

1. the receive channel is started before the send channel (the IP's output has nowhere to go
   otherwise, and a send alone stalls once the IP's buffers are full);
2. both channels are polled to idle with a timeout (`dma_timeout` seconds; PYNQ's own `wait()`
   spins forever), and a DMA error is raised as such;
3. DMA_ERRORS must not have moved and the receive must have brought exactly one frame, or the
   frame is refused (`PynqProtocolError`): the IP fails closed from the moment it sees a
   transfer of the wrong length, but pixels that left before that moment cannot be recalled;
4. like the `sim` backend, the next frame waits for the detector to finish (STATUS.det_busy),
   so the output equals the `sim` and `model` backends' bit for bit; `process_frames` copies
   the next frame into a second input buffer meanwhile.

Registers are read and written by name from `hw/regs.py: pynq_register_map()`, the map the IP
is built from; there is no offset written here. Without the `pynq` package or a board, opening
the backend raises `BackendError` saying so.

CI runs this module unchanged against the Verilator model of the IP through a simulation of the
PYNQ objects it uses (`sim/fake_pynq.py`, tests/test_pynq_backend.py).
"""

import time
from pathlib import Path

import numpy as np

from .accelerator import BackendError

__all__ = ["PynqDevice", "PynqTimeout", "PynqProtocolError", "wait_channel", "DEFAULT_OVERLAY",
           "IP_NAME", "DMA_NAME", "load_pynq"]

#: The overlay's file when the backend string names none ("pynq"): obscura.bit in the working
#: directory, with obscura.hwh beside it.
DEFAULT_OVERLAY = "obscura.bit"
#: Cell names in the block design (bitstreams/pynq-z2/block_design.tcl).
IP_NAME, DMA_NAME = "obscura", "axi_dma"
STATUS_DET_BUSY = 1 << 3
#: The AXI DMA's S2MM_LENGTH register (Xilinx PG021): bytes received once a transfer is done.
S2MM_LENGTH = 0x58


class PynqTimeout(BackendError):
    """A DMA transfer or the detector did not finish in time."""


class PynqProtocolError(BackendError):
    """The IP saw an input transfer of the wrong length, or returned a short frame."""


def load_pynq():
    """Return the `pynq` module, or raise `BackendError` saying it needs a PYNQ board."""
    try:
        import pynq
    except Exception as exc:             # ImportError, or pynq failing away from a board
        raise BackendError(
            "the pynq backend needs a PYNQ board image (PYNQ-Z2 or PYNQ-Z1 running PYNQ >= "
            "3.0, where `pip install obscura[pynq]` adds it) and the obscura overlay "
            f"(bitstreams/pynq-z2/README.md); here `import pynq` failed: {exc}. Use "
            "--backend sim (cycle-accurate) or model on this machine.") from None
    return pynq


def wait_channel(channel, timeout, what):
    """Poll a DMA channel until idle; raise `PynqTimeout` after `timeout` seconds and
    `BackendError` on a DMA error (PYNQ's own `wait()` has no timeout)."""
    deadline = time.monotonic() + timeout
    while not channel.idle:
        if channel.error:
            raise BackendError(f"the AXI DMA's {what} channel reports an error (DMASR "
                               "DMAIntErr/SlvErr/DecErr): reload the overlay; if it persists, "
                               "the overlay and the buffers disagree on the frame size")
        if time.monotonic() > deadline:
            hint = ("the receive channel is started first, so the IP is not passing frames: "
                    "is the overlay loaded and its clock running?" if what == "send" else
                    "the IP did not return a whole frame")
            raise PynqTimeout(f"the AXI DMA {what} transfer did not finish within {timeout} s "
                              f"({hint}); reload the overlay (Overlay.download) and retry")


class PynqDevice:
    """The overlay's IP and DMA, with buffers for `width` x `height` frames; the same calls as
    `sim/pipeline_sim.PipelineSim` (`read`, `configure`, `process_frames`) plus `reset`."""

    def __init__(self, bitfile, width, height, dma_timeout=5.0, detector_timeout=30.0,
                 paced=True):
        from obscura.hw.regs import ID_VALUE, pynq_register_map
        pynq = load_pynq()
        self.width, self.height = width, height
        self.dma_timeout, self.detector_timeout, self.paced = (dma_timeout, detector_timeout,
                                                               paced)
        try:
            self.overlay = pynq.Overlay(str(bitfile))
        except Exception as exc:
            raise BackendError(
                f"cannot load the overlay {bitfile}: {exc}. Build it with `make pynq-overlay` "
                "(bitstreams/pynq-z2/README.md) and copy obscura.bit and obscura.hwh together "
                "to the board") from None
        try:
            self.ip = getattr(self.overlay, IP_NAME)
            self.dma = getattr(self.overlay, DMA_NAME)
        except AttributeError:
            raise BackendError(f"{bitfile} has no `{IP_NAME}` IP and `{DMA_NAME}` DMA: it is "
                               "not the obscura overlay") from None
        self.regs = {r.name: r.offset for r in pynq_register_map()}
        if self.read("ID") != ID_VALUE:
            raise BackendError(f"the IP in {bitfile} does not identify as obscura (ID "
                               f"{self.read('ID'):#x}, expected {ID_VALUE:#x})")
        built = (self.read("WIDTH"), self.read("HEIGHT"))
        if built != (width, height):
            raise BackendError(f"the overlay is built for {built[0]}x{built[1]} frames, not "
                               f"{width}x{height}: resize the input to {built[0]}x{built[1]} or "
                               f"rebuild the overlay (make pynq-overlay PYNQ_WIDTH={width} "
                               f"PYNQ_HEIGHT={height})")
        # Buffers once per frame size: two inputs (the next frame is copied in while the DMA
        # reads the other), one output.
        self._inputs = [pynq.allocate(shape=(height, width), dtype=np.uint32) for _ in (0, 1)]
        self._output = pynq.allocate(shape=(height, width), dtype=np.uint32)
        self._next = 0

    # ------------------------------------------------------------------ registers by name
    def read(self, name):
        return self.ip.read(self.regs[name])

    def write(self, name, value):
        self.ip.write(self.regs[name], value)

    def configure(self, cfg):
        from obscura.sim.pipeline_sim import pipeline_writes
        for offset, value in pipeline_writes(cfg):
            self.ip.write(offset, value)

    def reset(self):
        """Reset the pipeline and the wrapper (soft reset; registers back to reset values)."""
        self.write("DMA_CONTROL", 1)

    def close(self):
        for buf in self._inputs + [self._output]:
            buf.freebuffer()
        self._inputs = []

    # ------------------------------------------------------------------ frames
    def _copy_in(self, rgb):
        buf = self._inputs[self._next]
        words = buf.view(np.uint8).reshape(self.height, self.width, 4)
        words[..., 0], words[..., 1], words[..., 2] = rgb[..., 2], rgb[..., 1], rgb[..., 0]
        words[..., 3] = 0
        return buf

    def _check_frame(self, rgb):
        if rgb.shape != (self.height, self.width, 3):
            raise BackendError(f"frame of shape {rgb.shape}: the overlay takes "
                               f"{self.width}x{self.height} frames")

    def wait_detector(self):
        deadline = time.monotonic() + self.detector_timeout
        while self.read("STATUS") & STATUS_DET_BUSY:
            if time.monotonic() > deadline:
                raise PynqTimeout(f"the detector did not finish a frame within "
                                  f"{self.detector_timeout} s; reload the overlay")

    def transfer(self, buf):
        """Run one frame from the input buffer `buf`; return the output (H, W, 3) RGB."""
        errors = self.read("DMA_ERRORS")
        recv, send = self.dma.recvchannel, self.dma.sendchannel
        recv.transfer(self._output)               # receive first: the IP's output needs room
        send.transfer(buf)
        return errors

    def finish(self, errors):
        wait_channel(self.dma.sendchannel, self.dma_timeout, "send")
        wait_channel(self.dma.recvchannel, self.dma_timeout, "receive")
        self._output.invalidate()
        received = self.dma.read(S2MM_LENGTH)
        if self.read("DMA_ERRORS") != errors:
            raise PynqProtocolError(
                "the IP saw an input transfer whose length is not WIDTH x HEIGHT words and "
                "filled its output from then on; the frame is refused. The buffers must be "
                f"{self.width}x{self.height} 32-bit words (reload the overlay)")
        if received != 4 * self.width * self.height:
            raise PynqProtocolError(f"the DMA received {received} bytes, not one "
                                    f"{self.width}x{self.height} frame of 32-bit words; the "
                                    "frame is refused (reload the overlay)")
        words = self._output.view(np.uint8).reshape(self.height, self.width, 4)
        out = np.empty((self.height, self.width, 3), np.uint8)
        out[..., 0], out[..., 1], out[..., 2] = words[..., 2], words[..., 1], words[..., 0]
        if self.paced:
            self.wait_detector()
        return out

    def process_frames(self, frames, cfg=None):
        """Return the output frames (RGB) for a list of RGB frames (the `sim` backend's call)."""
        if cfg is not None:
            self.configure(cfg)
        frames = [np.asarray(f) for f in frames]
        out = []
        if not frames:
            return out
        self._check_frame(frames[0])
        buf = self._copy_in(frames[0])
        for k in range(len(frames)):
            errors = self.transfer(buf)
            if k + 1 < len(frames):               # overlap: copy the next frame in meanwhile
                self._check_frame(frames[k + 1])
                self._next ^= 1
                buf = self._copy_in(frames[k + 1])
            out.append(self.finish(errors))
        return out


def overlay_path(backend):
    """The overlay file named by a backend string: "pynq" or "pynq:PATH.bit"."""
    _, _, path = backend.partition(":")
    return Path(path or DEFAULT_OVERLAY)
