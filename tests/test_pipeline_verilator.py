"""The whole pipeline RTL (`Anonymizer`, C++ Verilator harness) against the composed model, bit
for bit, and fault injection: in every case no raw pixel of an unvouched frame comes out, and
the pipeline recovers on the next clean frames."""

import numpy as np
import pytest

from conftest import BUILD
from obscura.hw.mask_model import frames_to_stream
from obscura.hw.pipeline_model import PipelineConfig, PipelineModel
from obscura.hw.types import Mode, Shape
from obscura.samples import astronaut_face_crops
from obscura.sim.compare import assert_frames_equal as _assert_frames_equal
from obscura.sim.pipeline_sim import STATUS_DET_BUSY, PipelineSim

W, H, CASCADE = 160, 120, "frontalface_alt"
FILL = (255, 0, 255)


def face_frames(shifts):
    """160x120 crops of a real photo; the face moves with the shift."""
    return astronaut_face_crops(shifts, W, H)


def assert_frames_equal(expected, got, what):
    _assert_frames_equal(expected, got, what, BUILD / "test-failures")


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


@pytest.mark.parametrize("offset", [-16, 32])
def test_threshold_offset_register_moves_the_detections_bit_exact(sim, offset):
    """DETECT.threshold_offset reaches the cascade engine: other boxes than with offset 0,
    the same as the model's with that offset."""
    frames = face_frames([0, 4, 5, 6, 5])
    cfg = PipelineConfig(color=FILL, threshold_offset=offset)
    sim.dev.reset()
    got = sim.process_frames(frames, cfg)
    assert (sim.read("DETECT") >> 8) & 0xFF == offset & 0xFF
    model = PipelineModel(W, H, CASCADE)
    expected = model.process_frames(frames, cfg)
    assert_frames_equal(expected, got, f"threshold offset {offset}")
    plain = PipelineModel(W, H, CASCADE)
    plain.process_frames(frames, PipelineConfig(color=FILL))
    assert [r[0] for r in model.results] != [r[0] for r in plain.results]


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
    good = face_frames([0, 4, 5, 6, 5, 4, 7])
    sim.process_frames(good[:3])
    # A frame cut short in its 50th line, then clean frames.
    rgb, first, last = frames_to_stream([good[3]])
    cut = W * 50 + 17
    out, _, _, _ = sim.dev.stream(rgb[:cut, ::-1], first[:cut], last[:cut], n_out=cut)
    assert len(out) == cut
    sim.wait_detector()
    got = sim.process_frames(good[4:])
    # good[4] starts while the cut frame is mid-line: the mask unit fills it whole (it
    # cannot tell a clean frame start from a `first` out of place). good[5] is masked with the
    # results of the cut frame, which was never analysed: filled. good[6] recovers.
    assert is_filled(got[0]) and is_filled(got[1]) and not is_filled(got[2])
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


def stream_part(sim, rgb, first, last):
    """Push part of a frame and collect as many output pixels (the delay line is time-based,
    so they all come out before the call returns)."""
    out, _, _, _ = sim.dev.stream(rgb[:, ::-1], first, last, n_out=len(rgb))
    assert len(out) == len(rgb)
    return out[:, ::-1]


def test_registers_written_mid_frame_take_effect_at_the_next_frame(sim):
    frames = face_frames([0, 4, 5, 6, 5, 4])
    mosaic, solid = PipelineConfig(color=FILL), PipelineConfig(color=FILL, mode=Mode.SOLID)
    sim.dev.reset()
    sim.configure(mosaic)
    got = sim.process_frames(frames[:3])
    # Frame 3: the first half streams, the mode register changes, the second half streams.
    rgb, first, last = frames_to_stream([frames[3]])
    half = W * (H // 2) + 7
    top = stream_part(sim, rgb[:half], first[:half], last[:half])
    sim.configure(solid)
    bottom = stream_part(sim, rgb[half:], first[half:], last[half:])
    got.append(np.concatenate([top, bottom]).reshape(H, W, 3))
    sim.wait_detector()
    got += sim.process_frames(frames[4:])
    model = PipelineModel(W, H, CASCADE)
    expected = model.process_frames(frames[:4], mosaic) + model.process_frames(frames[4:], solid)
    assert_frames_equal(expected, got, "register change mid-frame")


def test_enable_toggled_mid_frame_fills_from_the_next_frame_and_rearms(sim):
    frames = face_frames([0, 4, 5, 6, 5, 4, 7, 6])
    on, off = PipelineConfig(color=FILL), PipelineConfig(color=FILL, enable=False)
    sim.dev.reset()
    sim.configure(on)
    got = sim.process_frames(frames[:3])

    def split(frame, cfg):
        rgb, first, last = frames_to_stream([frame])
        half = W * 40 + 3
        top = stream_part(sim, rgb[:half], first[:half], last[:half])
        sim.configure(cfg)
        bottom = stream_part(sim, rgb[half:], first[half:], last[half:])
        sim.wait_detector()
        return np.concatenate([top, bottom]).reshape(H, W, 3)

    got.append(split(frames[3], off))       # disabled during frame 3: frame 4 on are filled
    got += sim.process_frames(frames[4:5])
    got.append(split(frames[5], on))        # enabled during frame 5: frame 6 on are masked
    got += sim.process_frames(frames[6:])
    assert not is_filled(got[3]) and is_filled(got[4]) and is_filled(got[5])
    assert not is_filled(got[6]) and not is_filled(got[7])
    model = PipelineModel(W, H, CASCADE)
    expected = (model.process_frames(frames[:4], on) + model.process_frames(frames[4:6], off)
                + model.process_frames(frames[6:], on))
    assert_frames_equal(expected, got, "enable toggled mid-frame")


def test_reset_mid_frame_starts_over_filled(sim):
    frames = face_frames([0, 4, 5, 6, 5])
    cfg = PipelineConfig(color=FILL)
    sim.dev.reset()
    sim.configure(cfg)
    sim.process_frames(frames[:3])
    rgb, first, last = frames_to_stream([frames[3]])
    stream_part(sim, rgb[:W * 30], first[:W * 30], last[:W * 30])
    sim.dev.reset()             # power-on state: registers at reset values, no analysis yet
    sim.configure(cfg)
    got = sim.process_frames(frames)
    expected = PipelineModel(W, H, CASCADE).process_frames(frames, cfg)
    assert is_filled(got[0]) and is_filled(got[1]) and not is_filled(got[2])
    assert_frames_equal(expected, got, "reset mid-frame")


#: Which of the four clean frames after a faulty one is masked with the faulty frame's
#: analysis and so filled. Without its `first` the faulty stretch is no frame at all (every
#: pixel filled as a protocol error): the clean frames count on from the frame before it.
FAULT_FILLED = {"long line": 1, "short line": 1, "missing first": None, "repeated first": 1,
                "too few lines": 1}


@pytest.mark.parametrize("fault", ["long line", "short line", "missing first",
                                   "repeated first", "too few lines"])
def test_malformed_streams_leak_no_raw_pixel_and_recover(sim, fault):
    """From the first faulty pixel to the end of its frame every output pixel is the fill
    colour; the frame whose analysis saw the fault is filled; clean frames recover."""
    frames = face_frames([0, 4, 5, 6, 5, 4, 7, 6])
    cfg = PipelineConfig(color=FILL)
    sim.dev.reset()
    sim.configure(cfg)
    sim.process_frames(frames[:3])
    rgb, first, last = frames_to_stream([frames[3]])
    row = W * 30                            # the fault sits in line 30
    if fault == "long line":                # line 30 has 8 pixels too many
        extra = rgb[row:row + 8]
        rgb = np.concatenate([rgb[:row + W - 1], extra, rgb[row + W - 1:]])
        first = np.concatenate([first[:row + W - 1], np.zeros(8, bool), first[row + W - 1:]])
        last = np.concatenate([last[:row + W - 1], np.zeros(8, bool), last[row + W - 1:]])
        bad = row + W                       # pixel 161 of the line
    elif fault == "short line":             # line 30 ends 10 pixels early
        last = last.copy()
        last[row + W - 11] = True
        bad = row + W - 10
    elif fault == "missing first":          # the frame's first marker is lost
        first = first.copy()
        first[0] = False
        bad = 0
    elif fault == "repeated first":         # a second `first` in line 30
        first = first.copy()
        first[row + 5] = True
        # It cuts this frame and starts one mid-line, which is filled whole.
        bad = row + 5
    else:                                   # the frame ends after 60 lines
        rgb, first, last = rgb[:W * 60], first[:W * 60], last[:W * 60]
        bad = None
    out = stream_part(sim, rgb, first, last)
    if bad is not None:
        tail = out[bad:]
        assert (tail == np.array(FILL, np.uint8)).all(), (
            f"{fault}: {int((tail != np.array(FILL, np.uint8)).any(1).sum())} raw or masked "
            f"pixels after the fault at pixel {bad}")
    sim.wait_detector()
    got = sim.process_frames(frames[4:])
    # The frame masked with the faulty frame's analysis is filled; clean frames recover.
    filled = [is_filled(f) for f in got]
    if FAULT_FILLED[fault] is None:
        assert not any(filled), filled
    else:
        assert filled[FAULT_FILLED[fault]], filled
    assert not is_filled(got[-1]) and (got[-1] != frames[-1]).any()
    assert sim.read("ERRORS") >= 1


def test_more_detections_than_tracker_inputs_fail_closed():
    """More detections in a frame than the tracker takes (here 4, a build parameter; 32 by
    default): the frame masked with them is filled, never partly masked. Grouping off
    (DETECT.min_neighbors = 0) gives 5 raw windows on this face; back to 3 neighbours (one box),
    the pipeline recovers. Bit-exact with the model throughout."""
    sim = PipelineSim(W, H, CASCADE, max_detections=4)
    frames = face_frames([0, 4, 5, 6, 5, 4, 7, 6])
    raw, grouped = PipelineConfig(color=FILL, min_neighbors=0), PipelineConfig(color=FILL)
    got = sim.process_frames(frames[:4], raw) + sim.process_frames(frames[4:], grouped)
    model = PipelineModel(W, H, CASCADE, max_detections=4)
    expected = model.process_frames(frames[:4], raw) + model.process_frames(frames[4:], grouped)
    assert sim.read("SATURATIONS") >= 1
    # Frames 2..5 are masked with the raw analyses of frames 0..3: filled where one had more
    # than 4 windows (the model says which); 6 and 7 recover.
    filled = [is_filled(f) for f in got]
    assert filled == [m[0] for m in model.masks]
    assert sum(filled[2:6]) >= 2 and filled[6:] == [False, False], filled
    assert_frames_equal(expected, got, "tracker saturation")


def small_frames(count):
    """64x48 crops of a real photo, the face moving a little (analysed at full size: fast)."""
    import cv2

    from obscura.samples import astronaut_bgr
    photo = cv2.resize(astronaut_bgr()[..., ::-1], (160, 160), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(photo[5 + k % 5:53 + k % 5, 30 + k % 7:94 + k % 7])
            for k in range(count)]


def test_frame_counters_wrap_past_frame_256_bit_exact():
    """300 small frames (64x48 crops of a real photo, analysed at full size so that they go
    through in seconds): the pipeline's 8-bit frame counters wrap at 256 and every frame still
    equals the model, vouched (the tracker once held its results back from frame 256 on and
    every frame came out filled: make bench's whole-video comparison found it)."""
    from obscura.hw.detector_model import DetectorParams
    params = DetectorParams(downscale=1)
    sim = PipelineSim(64, 48, CASCADE, params=params)
    model = PipelineModel(64, 48, CASCADE, params=params)
    frames = small_frames(300)
    cfg = PipelineConfig(color=FILL)
    got = sim.process_frames(frames, cfg)
    expected = model.process_frames(frames, cfg)
    assert_frames_equal(expected, got, "300 frames")
    assert all(model.vouched[2:]) and not any(is_filled(f) for f in got[2:])
    assert sim.read("FAILED_CLOSED") == 2


def test_every_third_frame_analysed_bit_exact_and_overrun_fails_closed():
    """`detect_every` = 3 (the ULX3S board's setting): frames 0, 3, 6, ... are analysed, each
    analysis running on while the two frames after it stream in back to back, and masking
    frames a + 4 .. a + 6. Bit-exact with the model; frames 0 .. 3 filled, then every frame
    vouched and masked. Then back to back through an analysis slot: the analysis is
    abandoned (overrun) and the frames it would have masked are filled, never shown raw."""
    from obscura.hw.detector_model import DetectorParams
    params = DetectorParams(downscale=1)
    sim = PipelineSim(64, 48, CASCADE, params=params, detect_every=3)
    model = PipelineModel(64, 48, CASCADE, params=params, detect_every=3)
    frames = small_frames(12)
    cfg = PipelineConfig(color=FILL)
    sim.configure(cfg)
    got, spanned = [], 0
    for g in range(0, len(frames), 3):
        # Frame g's analysis starts as it ends; frames g + 1, g + 2 follow at once.
        got += sim.process_frames(frames[g:g + 3], paced=False)
        spanned += bool(sim.read("STATUS") & STATUS_DET_BUSY)
        sim.wait_detector()
    expected = model.process_frames(frames, cfg)
    assert_frames_equal(expected, got, "detect_every=3")
    assert model.vouched == [False] * 4 + [True] * 8
    assert model.masks[10][1] and model.masks[11][1]        # a face masked: not vacuous
    assert [is_filled(f) for f in got] == [True] * 4 + [False] * 8
    assert sim.read("DET_FRAMES") == 4 and sim.read("DET_OVERRUNS") == 0
    # The analyses took longer than the two frames after them: they really spanned frames.
    assert spanned == 4, spanned
    cycles = sim.read("DET_CYCLES")
    assert cycles > 3 * (64 * 48 + 2048), cycles      # longer than three frames back to back
    # Back to back from frame 12: frame 12's analysis is abandoned when frame 15 ends, frame
    # 15's when frame 18 ends. Frames 12 .. 15 (masked by analyses 6 and 9) are fine, 16 .. 21
    # (analyses 12 and 15) filled; paced from frame 19, analysis 18 masks 22 .. 24 again.
    more = sim.process_frames(small_frames(19)[12:], paced=False)
    assert sim.read("DET_OVERRUNS") == 2
    sim.wait_detector()
    more += sim.process_frames(small_frames(25)[19:])
    filled = [is_filled(f) for f in more]
    assert filled == [False] * 4 + [True] * 6 + [False] * 3, filled
    assert all((f != r).any() for f, r in zip(more[-3:], small_frames(25)[22:]))
