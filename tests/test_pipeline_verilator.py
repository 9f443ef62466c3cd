"""The whole pipeline RTL (`Anonymizer`, C++ Verilator harness) against the composed model, bit
for bit, and fault injection: in every case no raw pixel of an unvouched frame comes out, and
the pipeline recovers on the next clean frames."""

import cv2
import numpy as np
import pytest

from conftest import BUILD, astronaut_rgb
from obscura.hw.mask_model import frames_to_stream
from obscura.hw.pipeline_model import PipelineConfig, PipelineModel
from obscura.hw.types import Mode, Shape
from obscura.sim.compare import mismatch_report
from obscura.sim.pipeline_sim import PipelineSim

W, H, CASCADE = 160, 120, "frontalface_alt"
FILL = (255, 0, 255)


def face_frames(shifts):
    """160x120 crops of a real photo; the face moves with the shift."""
    out = []
    for s in shifts:
        x0 = 60 + 4 * s
        img = astronaut_rgb()[0:240, x0:x0 + 320]
        out.append(np.ascontiguousarray(cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)))
    return out


def assert_frames_equal(expected, got, what):
    for k, (a, b) in enumerate(zip(expected, got)):
        _, first, last = frames_to_stream([a])
        report = mismatch_report(a.reshape(-1, 3), b.reshape(-1, 3), first, last)
        if report:
            out = BUILD / "test-failures" / what.replace(" ", "_")
            out.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / f"frame{k}-expected.png"), a[..., ::-1])
            cv2.imwrite(str(out / f"frame{k}-got.png"), b[..., ::-1])
            cv2.imwrite(str(out / f"frame{k}-diff.png"),
                        (np.abs(a.astype(int) - b).sum(2) > 0).astype(np.uint8) * 255)
            pytest.fail(f"{what}: frame {k}: {report} (images in {out})")


def is_filled(frame, color=FILL):
    return bool((frame == np.array(color, np.uint8)).all())


@pytest.fixture(scope="module")
def sim():
    return PipelineSim(W, H, CASCADE)


@pytest.mark.parametrize("mode,shape", [(Mode.MOSAIC, Shape.BOX), (Mode.BLUR, Shape.ELLIPSE),
                                        (Mode.SOLID, Shape.BOX)])
def test_bit_exact_with_the_composed_model(sim, mode, shape):
    frames = face_frames([0, 4, 5, 6, 5, 4, 7, 7])
    cfg = PipelineConfig(mode=mode, shape=shape, color=FILL, zones=[(140, 0, 160, 20)])
    sim.dev.reset()
    got = sim.process_frames(frames, cfg)
    model = PipelineModel(W, H, CASCADE)
    expected = model.process_frames(frames, cfg)
    assert_frames_equal(expected, got, f"pipeline {mode.name} {shape.name}")
    assert model.vouched[:3] == [False, False, True]
    assert is_filled(got[0]) and is_filled(got[1])
    assert not is_filled(got[2]) and (got[2] != frames[2]).any()
    assert sim.read("FAILED_CLOSED") == 2 and sim.read("DET_FRAMES") == len(frames)


def test_tracker_slots_and_zones_read_back(sim):
    frames = face_frames([0, 4, 5])
    cfg = PipelineConfig(color=FILL, zones=[(1, 2, 30, 40)])
    sim.dev.reset()
    sim.process_frames(frames, cfg)
    model = PipelineModel(W, H, CASCADE)
    model.process_frames(frames, cfg)
    # The RTL has also applied frame n - 2's results (it did so once frame n - 1 started).
    boxes, complete = model.results[-2]
    assert complete
    model.tracker.update(boxes, cfg.hold)
    for i, slot in enumerate(model.tracker.slots):
        a, b, c = (sim.read(f"SLOT{i}_{x}") for x in "ABC")
        assert (b >> 31) == slot.valid, f"slot {i}"
        if slot.valid:
            assert (a & 0xFFF, a >> 16, b & 0xFFF, (b >> 16) & 0xFFF) == slot.box()
            assert c >> 16 & 0xFF == slot.hits and c >> 24 == slot.age
    assert sim.read("ZONE0_A") == 1 | (2 << 16)
    assert sim.read("ZONE0_B") == 30 | (40 << 16) | (1 << 31)


def test_overrun_fails_closed_and_recovers(sim):
    frames = face_frames([0, 4, 5, 6, 5, 4])
    cfg = PipelineConfig(color=FILL)
    sim.dev.reset()
    # Back to back: every analysis is abandoned when the next frame arrives.
    got = sim.process_frames(frames, cfg, paced=False)
    assert all(is_filled(f) for f in got)
    assert sim.read("DET_OVERRUNS") >= len(frames) - 1
    sim.wait_detector()
    # Paced again. The last of those frames had time to be analysed: only the first paced
    # frame (masked with the abandoned analysis of the one before) is filled.
    got = sim.process_frames(face_frames([0, 4, 5, 6]), cfg)
    assert is_filled(got[0])
    assert not any(is_filled(f) for f in got[1:])


def test_malformed_frame_is_not_vouched(sim):
    cfg = PipelineConfig(color=FILL)
    sim.dev.reset()
    sim.configure(cfg)
    good = face_frames([0, 4, 5, 6, 5, 4])
    sim.process_frames(good[:3])
    # A frame cut short in its 50th line, then clean frames.
    rgb, first, last = frames_to_stream([good[3]])
    cut = W * 50 + 17
    out, _, _, _ = sim.dev.stream(rgb[:cut, ::-1], first[:cut], last[:cut], n_out=cut)
    assert len(out) == cut
    sim.wait_detector()
    got = sim.process_frames(good[4:])
    # good[4] is masked with the results of good[2] (vouched); good[5] with those of the cut
    # frame, which was never analysed: filled.
    assert not is_filled(got[0]) and is_filled(got[1])
    assert sim.read("DET_BAD") == 1


def test_disabled_pipeline_fills_every_frame(sim):
    sim.dev.reset()
    got = sim.process_frames(face_frames([0, 4, 5, 6]), PipelineConfig(color=FILL,
                                                                       enable=False))
    assert all(is_filled(f) for f in got)
    got = sim.process_frames(face_frames([5, 4]), PipelineConfig(color=FILL))
    assert not is_filled(got[0])


def test_video_frames_bit_exact(shared_data):
    import av
    frames = []
    with av.open(str(shared_data / "video" / "hamilton-640x360.mp4")) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k >= 100 and k % 4 == 0:         # people facing the camera from frame 100
                frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) == 4:
                break
    cfg = PipelineConfig(mode=Mode.BLUR)
    sim = PipelineSim(640, 360)
    got = sim.process_frames(frames, cfg)
    model = PipelineModel(640, 360)
    expected = model.process_frames(frames, cfg)
    assert_frames_equal(expected, got, "pipeline video 640x360")
    assert any(model.vouched) and any(s.valid for s in model.tracker.slots)
