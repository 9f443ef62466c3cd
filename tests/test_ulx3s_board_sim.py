"""Board-level simulation (sim/board_sim.py): the ULX3S board core in Verilator with a camera
model playing real frames in DVP timing on its own clock, SCCB acknowledged by the camera
model, and the frames recovered from the TMDS symbols compared bit for bit with the pipeline
model on the RGB565 view of the same frames. CI runs 160x120 (the pipeline is parametric);
`make bench` runs the board's own 1280x720 geometry."""

import cv2
import numpy as np
import pytest

from conftest import BUILD
from obscura.hw.camera_board import BOARD_DETECT_EVERY, BOARD_MIN_BLOCK
from obscura.hw.dvp import rgb565_quantize
from obscura.hw.ov5640 import OV5640_720P30_RGB565
from obscura.hw.pipeline_model import PipelineConfig, PipelineModel
from obscura.hw.sccb import decode_i2c, sccb_writes
from obscura.hw.types import Mode
from obscura.samples import astronaut_face_crops
from obscura.sim.board_sim import BoardSim
from obscura.sim.compare import assert_frames_equal

W, H, CASCADE = 160, 120, "frontalface_alt"
#: Frames the board fills after reset: the first analysis (frame 0) masks frames P + 1 .. 2P.
FILLED = BOARD_DETECT_EVERY + 1
LED_FAIL_CLOSED, LED_OVERRUN, LED_CAMERA, LED_PATTERN = 1, 2, 4, 8


def face_frames(shifts):
    return astronaut_face_crops(shifts, W, H)


def assert_shown_equal(expected, shown, what):
    assert_frames_equal(expected, shown, what, BUILD / "test-failures")


@pytest.fixture(scope="module")
def board():
    return BoardSim(W, H, cascade=CASCADE)


def expected_output(frames, cfg=None):
    cfg = cfg or PipelineConfig()
    return PipelineModel(W, H, CASCADE, min_block=BOARD_MIN_BLOCK,
                         detect_every=BOARD_DETECT_EVERY).process_frames(
        [rgb565_quantize(f) for f in frames], cfg)


def shifts(n):
    """Face shifts for `n` frames, the face moving a few pixels back and forth."""
    return [(0, 4, 5, 6, 5)[k % 5] for k in range(n)]


def test_board_shows_anonymized_camera_frames(board):
    frames = face_frames(shifts(FILLED + 2))
    shown, problems, info = board.run(frames)
    assert not problems, problems
    expected = expected_output(frames)
    assert_shown_equal(expected, shown, "board camera frames")
    # The board analyses every P-th frame: filled until the detector vouches (frames
    # 0 .. P), then masked with frame 0's analysis, not raw.
    assert all((f == 0).all() for f in shown[:FILLED])
    for f, raw in zip(shown[FILLED:], frames[FILLED:]):
        assert not (f == 0).all() and (f != rgb565_quantize(raw)).any()
    assert info["frames_shown"] == len(frames) and info["frames_broken"] == 0
    assert info["leds"] & LED_CAMERA and not info["leds"] & LED_PATTERN

    # The camera was configured with the OV5640 table, every byte acknowledged.
    scl, sda = board.sccb_trace()
    got = decode_i2c(scl, sda)
    want = sccb_writes(OV5640_720P30_RGB565)
    assert [[b for b, _ in t] for t in got] == [list(w) for w in want]
    assert all(ack for t in got for _, ack in t)


def test_mode_button_selects_blur():
    sim = BoardSim(W, H, cascade=CASCADE, quiet=True)
    sim.set_inputs(camera_present=True, btn_mode=1)        # pressed from reset: one press
    frames = face_frames(shifts(FILLED + 1))
    shown, problems, _ = sim.run(frames)
    assert not problems, problems
    assert_shown_equal(expected_output(frames, PipelineConfig(mode=Mode.BLUR)), shown,
                       "board blur")


def test_no_camera_shows_the_pattern_through_the_pipeline():
    # Every frame analysed (detect_every=1, not the board's P): at this size an analysis needs
    # longer than a frame, which is what this test is about.
    sim = BoardSim(W, H, cascade=CASCADE, quiet=True, detect_every=1)
    sim.set_inputs(camera_present=False)
    shown, problems, info = sim.run([], frames_wanted=5)
    assert not problems, problems
    assert len(shown) == 5
    assert info["pattern_on"] == 1 and info["leds"] & LED_PATTERN
    assert not info["leds"] & LED_CAMERA
    # The pattern comes at the display's frame rate; the detector needs longer than a frame,
    # so every analysis is abandoned (the first as frame 1 ends) and every frame fails closed
    # (filled): what the board must do when the detector cannot keep up.
    assert all((f == 0).all() for f in shown)
    assert info["leds"] & LED_OVERRUN and info["leds"] & LED_FAIL_CLOSED
    scl, sda = sim.sccb_trace()
    got = decode_i2c(scl, sda)
    assert len(got) == 1 and got[0][0] == (0x78, False)    # one write, no acknowledge


def test_board_video_frames(board, shared_data):
    import av
    frames = []
    with av.open(str(shared_data / "video" / "hamilton-640x360.mp4")) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k >= 100 and k % 4 == 0:
                rgb = f.to_ndarray(format="rgb24")
                frames.append(np.ascontiguousarray(
                    cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA)))
            if len(frames) == FILLED + 2:       # the last two masked with frame 0's analysis
                break
    fresh = BoardSim(W, H, cascade=CASCADE, quiet=True)
    shown, problems, _ = fresh.run(frames)
    assert not problems, problems
    assert_shown_equal(expected_output(frames), shown, "board video frames")
