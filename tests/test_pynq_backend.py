"""The `pynq` backend, unchanged, against the Verilator model of the overlay's IP (`ObscuraPynq`)
through a simulated PYNQ-Z2 (sim/fake_pynq.py: Overlay, allocate, MMIO, the AXI DMA's channels
over a model of the DMA in simple mode): frames identical to the `sim` and `model` backends, the
DMA protocol (tlast, transfer lengths, a send with no receive), registers by name."""

import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from obscura.accelerator import BackendError
from obscura.hw.mask_model import frames_to_stream
from obscura.hw.regs import ID_VALUE, pynq_register_map
from obscura.samples import astronaut_face_crops
from obscura.sim.compare import mismatch_report

ROOT = Path(__file__).resolve().parent.parent
W, H, CASCADE = 160, 120, "frontalface_alt"
N = W * H
FILL = (255, 0, 255)
FILL_WORD = FILL[2] | (FILL[1] << 8) | (FILL[0] << 16)       # bytes B, G, R, 0
REGS = {r.name: r for r in pynq_register_map(W, H)}


@pytest.fixture(scope="module")
def board():
    from obscura.sim import fake_pynq
    mp = pytest.MonkeyPatch()
    mp.setitem(sys.modules, "pynq", fake_pynq)    # what the backend's `import pynq` finds
    board = fake_pynq.install(fake_pynq.SimulatedBoard(W, H, CASCADE))
    yield board
    mp.undo()


@pytest.fixture
def dev(board):
    """The backend's device on a freshly loaded overlay (fill colour FILL)."""
    from obscura.hw.pipeline_model import PipelineConfig
    from obscura.pynq_backend import PynqDevice
    d = PynqDevice("obscura.bit", W, H, detector_timeout=600)
    d.configure(PipelineConfig(color=FILL))
    yield d
    d.close()


def astronaut_frames(shifts):
    return astronaut_face_crops(shifts, W, H)


def video_frames_bgr(shared, picks=(100, 104, 108, 112)):
    """Frames of the dev video: a 320x240 crop around the faces scaled to 160x120."""
    import av
    out = []
    with av.open(str(shared / "video" / "hamilton-640x360.mp4")) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k in picks:
                img = f.to_ndarray(format="bgr24")[40:280, 100:420]
                out.append(np.ascontiguousarray(
                    cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)))
            if k >= max(picks):
                break
    return out


def assert_same(expected, got, what):
    for k, (a, b) in enumerate(zip(expected, got)):
        _, first, last = frames_to_stream([a])
        report = mismatch_report(a.reshape(-1, 3), b.reshape(-1, 3), first, last)
        assert not report, f"{what}: frame {k}: {report}"


def is_filled_words(words):
    return bool((np.asarray(words) == FILL_WORD).all())


def run_frame(dev, rgb, nbytes=0, out_words=N):
    """One frame by hand through the DMA (receive first); return (output words, received
    bytes) after waiting for both channels and the detector."""
    import pynq
    src = pynq.allocate(shape=(max(N, nbytes // 4),), dtype=np.uint32)
    words = src[:N].view(np.uint8).reshape(H, W, 4)
    words[..., 0], words[..., 1], words[..., 2] = rgb[..., 2], rgb[..., 1], rgb[..., 0]
    dst = pynq.allocate(shape=(out_words,), dtype=np.uint32)
    dev.dma.recvchannel.transfer(dst)
    dev.dma.sendchannel.transfer(src, nbytes=nbytes)
    dev.dma.sendchannel.wait()
    dev.dma.recvchannel.wait()
    dev.wait_detector()
    out = np.array(dst)
    received = dev.dma.recvchannel.transferred
    src.freebuffer()
    dst.freebuffer()
    return out, received


def test_video_frames_identical_to_sim_and_model(board, shared_data):
    import obscura
    frames = video_frames_bgr(shared_data)
    outs = {}
    for backend, options in (("pynq", {"detector_timeout": 600}), ("sim", {}), ("model", {})):
        with obscura.open(backend, cascade=CASCADE, quiet=True, **options) as acc:
            acc.configure(mode="blur", color=FILL)
            outs[backend] = [acc.process(f) for f in frames]
            if backend == "pynq":
                log = [r["fail_closed"] for r in acc.frame_log]
                stats = acc.stats
    assert_same(outs["model"], outs["pynq"], "pynq against model")
    assert_same(outs["sim"], outs["pynq"], "pynq against sim")
    # The test means something: frames 0 and 1 filled (start-up), a face masked in the rest.
    assert log == [True, True, False, False]
    assert stats["detector_frames"] == len(frames)
    assert any((o != f).any() for o, f in zip(outs["pynq"][2:], frames[2:]))


def test_tlast_exactly_at_each_frame_end(dev):
    # The receive buffer has room beyond the frame: the DMA's S2MM stops at tlast, and
    # reports the bytes it received, so a tlast early or late shows in `transferred`.
    for rgb in astronaut_frames([0, 4, 5]):
        out, received = run_frame(dev, rgb, out_words=N + 64)
        assert received == 4 * N
        assert not out[N:].any()
    assert dev.read("DMA_FRAMES") == 3 and dev.read("DMA_ERRORS") == 0
    assert dev.read("DMA_STATUS") & 0b111 == 0


def fill_count(frames_words):
    return [is_filled_words(w) for w in frames_words]


@pytest.mark.parametrize("kind", ["short", "long"])
def test_wrong_transfer_length_fails_closed(dev, kind):
    frames = astronaut_frames([0, 4, 5, 6, 5, 4, 7])
    outs = []
    for k, rgb in enumerate(frames):
        nbytes = 0
        if k == 3:
            nbytes = 4 * (N // 2 + 17) if kind == "short" else 4 * (N + W + 3)
        out, received = run_frame(dev, rgb, nbytes=nbytes)
        # Whatever the input's length, the output is one whole frame, tlast on its last word.
        assert received == 4 * N, f"frame {k}"
        outs.append(out)
        if k == 3:
            status = dev.read("DMA_STATUS")
            assert status & 1, "length_error not raised"
            assert status & (2 if kind == "short" else 4), f"{kind} not flagged"
            assert dev.read("DMA_ERRORS") == 1
    assert dev.read("DMA_STATUS") & 0b111 == 0           # later transfers were clean
    filled = fill_count(outs)
    # Start-up fills frames 0 and 1; frame 2 is vouched and masked.
    assert filled[:3] == [True, True, False]
    bad = outs[3]
    if kind == "short":
        # The missing pixels come out as fill, so the receive still gets a whole frame.
        assert is_filled_words(bad[N // 2 + 17:])
    else:
        # The excess is seen right after the frame's last pixel: everything still inside the
        # pipeline then (at least the delay line's 2048 pixels) comes out filled.
        assert is_filled_words(bad[N - 2048:])
    assert not is_filled_words(bad)                     # pixels sent before it: not recalled
    # The two frames after the faulty one are filled entirely; then it recovers.
    assert filled[4:] == [True, True, False]
    assert dev.read("DMA_FILLED") >= 3


def test_backend_refuses_a_frame_of_the_wrong_length(dev):
    import pynq

    from obscura.pynq_backend import PynqProtocolError
    big = pynq.allocate(shape=(H + 1, W), dtype=np.uint32)     # a buffer of the wrong size
    errors = dev.transfer(big)
    with pytest.raises(PynqProtocolError, match="not WIDTH x HEIGHT words"):
        dev.finish(errors)
    big.freebuffer()


def test_send_without_receive_times_out(dev, board):
    import pynq

    from obscura.pynq_backend import PynqTimeout, wait_channel
    from obscura.sim.fake_pynq import DmaHang
    src = pynq.allocate(shape=(H, W), dtype=np.uint32)
    dev.dma.sendchannel.transfer(src)                          # no receive started
    with pytest.raises(PynqTimeout, match="send transfer did not finish"):
        wait_channel(dev.dma.sendchannel, 0.5, "send")
    # The IP took what its buffers hold and stopped: the stream is stuck, not slow.
    assert 0 < board.beats(0) < N
    # PYNQ's own wait() would spin forever here; the simulated one says so instead.
    hang, board.hang_cycles = board.hang_cycles, 100_000
    try:
        with pytest.raises(DmaHang, match="receive before send"):
            dev.dma.sendchannel.wait()
    finally:
        board.hang_cycles = hang
    src.freebuffer()


def test_registers_by_name_round_trip(dev):
    rng = np.random.default_rng(7)
    assert dev.read("ID") == ID_VALUE
    assert (dev.read("WIDTH"), dev.read("HEIGHT")) == (W, H)
    rw = [r for r in REGS.values() if r.access == "rw" and r.name != "DMA_CONTROL"]
    expected = {}
    for r in rw:
        mask = sum(((1 << f.width) - 1) << f.lsb for f in r.fields)
        value = int(rng.integers(0, 1 << 32))
        dev.write(r.name, value)
        expected[r.name] = value & mask
    for r in rw:
        assert dev.read(r.name) == expected[r.name], r.name
    # Soft reset (DMA_CONTROL.soft_reset): every register back to its reset value.
    dev.reset()
    assert dev.read("DMA_CONTROL") == 0
    for r in rw:
        assert dev.read(r.name) == r.reset_value(), r.name
    for name in ("ERRORS", "FRAMES", "DMA_FRAMES", "DMA_ERRORS", "DMA_FILLED"):
        assert dev.read(name) == 0, name


def test_frame_of_another_size_is_refused(board):
    import obscura
    with obscura.open("pynq", cascade=CASCADE) as acc:
        with pytest.raises(BackendError, match="built for 160x120"):
            acc.process(np.zeros((96, 128, 3), np.uint8))


def test_without_pynq_a_clear_error(monkeypatch):
    import obscura
    monkeypatch.setitem(sys.modules, "pynq", None)            # `import pynq` fails
    with pytest.raises(BackendError, match="needs a PYNQ board image"):
        obscura.open("pynq:/home/xilinx/obscura.bit")


def test_block_design_matches_the_backend_and_the_simulated_board():
    from obscura.pynq_backend import DMA_NAME, IP_NAME
    from obscura.sim import fake_pynq
    tcl = (ROOT / "bitstreams" / "pynq-z2" / "block_design.tcl").read_text()
    assert re.search(rf"CONFIG.c_sg_length_width \{{{fake_pynq.SG_LENGTH_WIDTH}\}}", tcl)
    assert fake_pynq.SG_LENGTH_WIDTH >= 23      # a 1920x1080 frame of 32-bit words
    assert (1 << fake_pynq.SG_LENGTH_WIDTH) > 4 * 1920 * 1080
    assert f"create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 {DMA_NAME}" in tcl
    assert re.search(rf"create_bd_cell -type ip -vlnv \S+ {IP_NAME}\b", tcl)
    assert f"{fake_pynq.IP_BASE:#010X}".replace("0X", "0x") in tcl.replace("0X", "0x")


def test_cli_without_a_board_exits_with_the_message(monkeypatch, tmp_path, capsys):
    from obscura.cli import main
    monkeypatch.setitem(sys.modules, "pynq", None)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), astronaut_frames([0])[0])
    code = main(["anonymize", str(src), "-o", str(tmp_path / "out.png"),
                 "--backend", "pynq:/home/xilinx/obscura/obscura.bit"])
    err = capsys.readouterr().err
    assert code == 1 and "needs a PYNQ board image" in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()
