"""A simulated PYNQ-Z2 for CI: the subset of the `pynq` package the `pynq` backend uses, over
the Verilator model of the overlay's IP (`ObscuraPynq`) and a model of the AXI DMA in simple
mode (sim/harness/pynq_harness.cpp).

    from obscura.sim import fake_pynq
    fake_pynq.install(fake_pynq.SimulatedBoard(160, 120, "frontalface_alt"))
    sys.modules["pynq"] = fake_pynq            # the backend's `import pynq` now finds the board

What it models, and how faithfully:

* `Overlay(path)`: "downloads" the overlay (resets the IP and the DMA), exposes `ip_dict`,
  `axi_dma` (the DMA driver) and `obscura` (a `DefaultIP` with `read`/`write`), named as in the
  block design (bitstreams/pynq-z2/block_design.tcl). The path is recorded, not read: the
  simulated board always holds the design it was built with.
* `allocate(shape, dtype)`: a numpy array with `physical_address` (its host address, which the
  DMA model reads and writes), `flush`, `invalidate`, `freebuffer`/`close`.
* `MMIO(base, length)`: every access first lets `mmio_cycles` fabric clocks pass (a Python MMIO
  access on the Zynq's ARM takes microseconds, hundreds of 100 MHz clocks: time on the board
  passes while the host polls), then reads or writes the register. Registers of the IP go
  through its real AXI4-Lite slave, cycle by cycle; the DMA's registers through the C++ model.
* The DMA driver (`sendchannel`, `recvchannel`: `start`, `stop`, `running`, `idle`, `error`,
  `transfer(array, start, nbytes)`, `wait()`, `transferred`) follows PYNQ's `pynq.lib.dma`
  simple-mode channel through the same registers (PG021): the receive channel has tready low
  until it is given a buffer, the send channel puts tlast on the last word, the receive channel
  ends at tlast and reports the bytes received; an address outside every allocated buffer is a
  decode error. The receive side accepts 3 words in 4 clocks (PG021: ~299 MB/s S2MM against
  ~399 MB/s MM2S at 100 MHz, 32-bit), so the IP's backpressure is exercised on every frame.
* Where PYNQ's own `wait()` would spin forever (a stream that can never move, such as a send
  with no receive started once the IP's buffers are full), this `wait()` raises `DmaHang` after
  `hang_cycles` clocks without a word moving on the channel. The backend does not rely on it:
  it polls `idle` with its own timeout, as it must on a board.

Why this and not the third-party `cocotbpynq` (0.2.0, GPL-3.0): it runs the host code inside a
cocotb test with Python on every clock (5-35 k clocks/s here, while the pipeline needs millions
of clocks per frame for the detector), it needs a Vivado `.hwh` of the design to find the IP
and the DMA (none can be made here without Vivado), and its DMA channel has no register model:
no `idle`, `running`, `error` or `transferred`, no check of a packet longer than the receive
buffer, and a `wait()` that blocks the simulation forever when the other channel never starts.
The backend's polling with a timeout could not even run against it. This transport runs the
same RTL through the C++ harness at millions of clocks per second and models the DMA's
registers, so the backend's code runs unchanged and its failure paths are tested.
"""

import ctypes
from pathlib import Path

import numpy as np

from .verilator import build_model

__all__ = ["SimulatedBoard", "install", "Overlay", "allocate", "MMIO", "PynqBuffer",
           "DefaultIP", "DMA", "DmaHang", "IP_BASE", "DMA_BASE", "SG_LENGTH_WIDTH"]

HARNESS = Path(__file__).resolve().parent / "harness" / "pynq_harness.cpp"
#: Addresses the block design gives the IP and the DMA (bitstreams/pynq-z2/block_design.tcl).
IP_BASE, DMA_BASE, ADDR_RANGE = 0x43C0_0000, 0x4040_0000, 0x1_0000
#: The DMA's buffer length register width in the block design: 2^26 - 1 bytes per transfer.
SG_LENGTH_WIDTH = 26
IP_NAME, DMA_NAME = "obscura", "axi_dma"
MM2S, S2MM = 0, 1

_BOARD = None
_BUFFERS = {}


class DmaHang(RuntimeError):
    """A wait() that could never return on a board: the channel's stream cannot move."""


class SimulatedBoard:
    """The Verilator model of `ObscuraPynq` (built once per configuration) with its DMA."""

    def __init__(self, width, height, cascade="frontalface_default", params=None,
                 mmio_cycles=256, hang_cycles=2_000_000, s2mm_rate=(3, 4), quiet=False):
        from obscura.hw.detector_model import DetectorParams
        from obscura.hw.pynq_top import ObscuraPynq
        self.width, self.height, self.cascade = width, height, cascade
        if params is None:
            # What the host picks for this width, as the overlay build does
            # (bitstreams/pynq-z2/export.py).
            from obscura.cli import auto_downscale
            params = DetectorParams(downscale=auto_downscale(width))
        self.params = params
        self.mmio_cycles, self.hang_cycles = mmio_cycles, hang_cycles
        key = (width, height, cascade, self.params)
        lib = build_model("obscura_pynq",
                          lambda: ObscuraPynq(width, height, cascade, self.params), key,
                          quiet=quiet, harness=HARNESS)
        self._lib = lib = ctypes.CDLL(str(lib))
        p, u32, u64 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64
        for name, args, res in (
                ("pq_create", [], p), ("pq_destroy", [p], None), ("pq_cycles", [p], u64),
                ("pq_reset", [p], None), ("pq_set_s2mm_rate", [p, u32, u32], None),
                ("pq_run", [p, u64], None), ("pq_run_until_done", [p, u32, u64], u64),
                ("pq_beats", [p, u32], u64), ("pq_dma_write", [p, u32, u32], None),
                ("pq_dma_read", [p, u32], u32), ("pq_dma_fault", [p, u32, u32], None),
                ("pq_axil_write", [p, u32, u32, u64], ctypes.c_int),
                ("pq_axil_read", [p, u32, u64, ctypes.POINTER(ctypes.c_int)], u32)):
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, res
        self._h = lib.pq_create()
        lib.pq_set_s2mm_rate(self._h, *s2mm_rate)
        self.reset()

    def close(self):
        if self._h:
            self._lib.pq_destroy(self._h)
            self._h = None

    def __del__(self):
        self.close()

    def reset(self):
        """Power-on: the IP's reset and the DMA's."""
        self._lib.pq_reset(self._h)

    @property
    def cycles(self):
        return self._lib.pq_cycles(self._h)

    def run(self, cycles):
        self._lib.pq_run(self._h, cycles)

    def beats(self, channel):
        """Words moved so far on the DMA's MM2S (0) or S2MM (1) stream."""
        return self._lib.pq_beats(self._h, channel)

    def ip_read(self, offset):
        ok = ctypes.c_int()
        value = self._lib.pq_axil_read(self._h, offset, 1000, ctypes.byref(ok))
        if not ok.value:
            raise RuntimeError(f"the IP did not answer an AXI4-Lite read of {offset:#x}")
        return value

    def ip_write(self, offset, value):
        if self._lib.pq_axil_write(self._h, offset, value & 0xFFFF_FFFF, 1000):
            raise RuntimeError(f"the IP did not answer an AXI4-Lite write of {offset:#x}")

    def dma_read(self, offset):
        return self._lib.pq_dma_read(self._h, offset)

    def dma_write(self, offset, value):
        channel = offset // 0x30
        if offset % 0x30 == 0x28 and value:
            lo = self.dma_read(channel * 0x30 + 0x18)
            hi = self.dma_read(channel * 0x30 + 0x1C)
            addr = lo | (hi << 32)
            if not any(b <= addr and addr + value <= e for b, e in _BUFFERS):
                # No memory answers there: the DMA's AXI master gets a decode error.
                self._lib.pq_dma_fault(self._h, offset, 0x40)
                return
        self._lib.pq_dma_write(self._h, offset, value & 0xFFFF_FFFF)

    def ip_dict(self):
        from obscura.hw.regs import ID_VALUE
        return {
            IP_NAME: {"phys_addr": IP_BASE, "addr_range": ADDR_RANGE,
                      "type": "obscura.dev:obscura:obscura_pynq:1.0",
                      "parameters": {"WIDTH": str(self.width), "HEIGHT": str(self.height)},
                      "registers": {}, "id": ID_VALUE},
            DMA_NAME: {"phys_addr": DMA_BASE, "addr_range": ADDR_RANGE,
                       "type": "xilinx.com:ip:axi_dma:7.1",
                       "parameters": {"c_include_sg": "0", "c_sg_length_width":
                                      str(SG_LENGTH_WIDTH), "c_m_axi_mm2s_data_width": "32",
                                      "c_m_axis_mm2s_tdata_width": "32",
                                      "c_include_mm2s": "1", "c_include_s2mm": "1"}},
        }


def install(board):
    """Make `board` the one that `Overlay()` and `MMIO()` reach."""
    global _BOARD
    _BOARD = board
    return board


def _board():
    if _BOARD is None:
        raise RuntimeError("no simulated board: call obscura.sim.fake_pynq.install("
                           "SimulatedBoard(...)) first")
    return _BOARD


class PynqBuffer(np.ndarray):
    """A numpy array in "contiguous memory": `physical_address` is what the DMA is given."""

    @property
    def physical_address(self):
        return self.ctypes.data

    def flush(self):
        """Write the CPU's cache back (nothing to do: the model reads host memory)."""

    def invalidate(self):
        """Drop the CPU's cached copy (nothing to do here either)."""

    def freebuffer(self):
        _BUFFERS.pop((self.physical_address, self.physical_address + self.nbytes), None)

    close = freebuffer

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.freebuffer()


def allocate(shape, dtype="u4", target=None, **kwargs):
    """Return a zeroed `PynqBuffer` the DMA may read and write."""
    buf = np.zeros(shape, dtype).view(PynqBuffer)
    _BUFFERS[(buf.physical_address, buf.physical_address + buf.nbytes)] = buf
    return buf


class MMIO:
    """Register access at `base_addr` (the IP's or the DMA's); each access costs the host's
    MMIO latency in fabric clocks first."""

    def __init__(self, base_addr, length=4, **kwargs):
        self.base_addr, self.length = base_addr, length
        self.board = _board()
        if IP_BASE <= base_addr < IP_BASE + ADDR_RANGE:
            self._base, self._read, self._write = IP_BASE, self.board.ip_read, \
                self.board.ip_write
        elif DMA_BASE <= base_addr < DMA_BASE + ADDR_RANGE:
            self._base, self._read, self._write = DMA_BASE, self.board.dma_read, \
                self.board.dma_write
        else:
            raise ValueError(f"nothing is mapped at {base_addr:#x} in this overlay")

    def _offset(self, offset):
        if offset % 4 or not 0 <= offset < self.length:
            raise ValueError(f"MMIO offset {offset:#x} is unaligned or outside 0..{self.length}")
        return self.base_addr - self._base + offset

    def read(self, offset=0, length=4, word_order="little"):
        if length != 4:
            raise ValueError("only 32-bit MMIO reads are modelled")
        self.board.run(self.board.mmio_cycles)
        return self._read(self._offset(offset))

    def write(self, offset, data):
        self.board.run(self.board.mmio_cycles)
        self._write(self._offset(offset), int(data))


class DefaultIP:
    """An IP with no driver of its own: `read(offset)` and `write(offset, value)` over MMIO."""

    def __init__(self, description):
        self.description = description
        self.mmio = MMIO(description["phys_addr"], description["addr_range"])

    def read(self, offset=0):
        return self.mmio.read(offset)

    def write(self, offset, value):
        self.mmio.write(offset, value)


class _Channel:
    """One channel of the simple-mode AXI DMA, as `pynq.lib.dma` drives it."""

    def __init__(self, mmio, offset, max_size, flush_before, which):
        self._mmio, self._offset, self._max_size = mmio, offset, max_size
        self._flush_before, self._which = flush_before, which
        self._active_buffer = None
        self._first_transfer = True
        self.transferred = 0
        self.start()

    @property
    def running(self):
        return self._mmio.read(self._offset + 4) & 0x01 == 0

    @property
    def idle(self):
        return self._mmio.read(self._offset + 4) & 0x02 == 0x02

    @property
    def error(self):
        return self._mmio.read(self._offset + 4) & 0x70 != 0

    def start(self):
        self._mmio.write(self._offset, 0x0001)
        if not self.running:
            raise RuntimeError("DMA channel did not start")
        self._first_transfer = True

    def stop(self):
        self._mmio.write(self._offset, 0x0000)

    def transfer(self, array, start=0, nbytes=0):
        if not self.running:
            raise RuntimeError("DMA channel not started")
        if not self.idle and not self._first_transfer:
            raise RuntimeError("DMA channel not idle")
        if nbytes == 0:
            nbytes = array.nbytes - start
        if nbytes > self._max_size:
            raise ValueError(f"Transfer size is {nbytes} bytes, which exceeds the maximum "
                             f"DMA buffer size {self._max_size}.")
        if (array.physical_address + start) % 4:
            raise RuntimeError("DMA does not support unaligned transfers; Starting address "
                               "must be aligned to 4 bytes.")
        if self._flush_before:
            array.flush()
        self.transferred = 0
        addr = array.physical_address + start
        self._mmio.write(self._offset + 0x18, addr & 0xFFFF_FFFF)
        self._mmio.write(self._offset + 0x1C, addr >> 32)
        self._mmio.write(self._offset + 0x28, nbytes)
        self._active_buffer = array
        self._first_transfer = False

    def wait(self):
        """Wait for the transfer to end (PYNQ's would spin forever on a stuck stream: this one
        raises `DmaHang` once no word has moved for `hang_cycles` clocks)."""
        if not self.running:
            raise RuntimeError("DMA channel not started")
        board = self._mmio.board
        moved, since = board.beats(self._which), board.cycles
        while True:
            status = self._mmio.read(self._offset + 4)
            if status & 0x10:
                raise RuntimeError("DMA Internal Error (transfer length 0?)")
            if status & 0x20:
                raise RuntimeError("DMA Slave Error (cannot access memory map interface)")
            if status & 0x40:
                raise RuntimeError("DMA Decode Error (invalid address)")
            if status & 0x02:
                break
            if board.beats(self._which) != moved:
                moved, since = board.beats(self._which), board.cycles
            elif board.cycles - since > board.hang_cycles:
                side = "send (MM2S)" if self._which == MM2S else "receive (S2MM)"
                other = "recvchannel" if self._which == MM2S else "sendchannel"
                raise DmaHang(f"simulated AXI DMA: the {side} channel moved no word in "
                              f"{board.hang_cycles} clocks; on a board this wait() would spin "
                              f"forever. Is {other}.transfer() started (receive before send)?")
        if not self._flush_before:
            self._active_buffer.invalidate()
        self.transferred = self._mmio.read(self._offset + 0x28)
        self._active_buffer = None


class DMA(DefaultIP):
    """The AXI DMA in simple mode: `sendchannel` (MM2S) and `recvchannel` (S2MM)."""

    def __init__(self, description):
        super().__init__(description)
        params = description["parameters"]
        self.buffer_max_size = (1 << int(params["c_sg_length_width"])) - 1
        self.sendchannel = _Channel(self.mmio, 0x00, self.buffer_max_size, True, MM2S)
        self.recvchannel = _Channel(self.mmio, 0x30, self.buffer_max_size, False, S2MM)


class Overlay:
    """The overlay on the simulated board: loading it resets the IP and the DMA."""

    def __init__(self, bitfile_name, download=True, **kwargs):
        board = _board()
        if not str(bitfile_name).endswith(".bit"):
            raise ValueError(f"{bitfile_name!r} is not a .bit file")
        self.bitfile_name = str(bitfile_name)
        self.board = board
        self.ip_dict = board.ip_dict()
        if download:
            self.download()

    def download(self):
        self.board.reset()
        setattr(self, DMA_NAME, DMA(self.ip_dict[DMA_NAME]))
        setattr(self, IP_NAME, DefaultIP(self.ip_dict[IP_NAME]))

    def free(self):
        pass
