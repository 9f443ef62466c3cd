"""The detector RTL (C++ Verilator harness) against `detector_model`: every window's stage
count, every box and every counter, on real photos and a real 1280x720 video frame; plus
idle input, output backpressure, overrun, malformed frames and the raw (ungrouped) mode on
small frames."""

import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from obscura.hw.cascade import CascadeError, load_cascade
from obscura.hw.cascade_program import build_program
from obscura.hw.detector import Detector
from obscura.hw.detector_model import DetectorParams, detect, stage_grids, trace_windows
from obscura.samples import astronaut_face_crops
from obscura.sim.compare import detector_mismatch
from obscura.sim.detector_sim import DetectorSim, frame_flags

SMALL = (160, 120, "frontalface_alt")
PHOTOS = ["2008_002506.jpg", "2008_001322.jpg", "2009_004587.jpg"]


def check(sim, rgb, frame=0, cascade="frontalface_default", params=None, **kw):
    params = params or sim.params
    result, trace, _ = sim.run_frame(rgb, **kw)
    det = detect(rgb, cascade, params)
    mt = trace_windows(rgb, cascade, params)
    levels = Detector.levels_for(sim.width, sim.height, cascade, params)
    msg = detector_mismatch(frame, mt, trace, det, result, levels)
    assert msg == "", msg
    return result, det


@pytest.fixture(scope="module")
def small_sim():
    return DetectorSim(*SMALL)


def small_frame(seed=0):
    """A 160x120 crop of a real photo with one face the 20 px cascade finds at D = 2."""
    return astronaut_face_crops([seed], *SMALL[:2])[0]


def test_small_frame_finds_the_face_bit_exact(small_sim):
    result, det = check(small_sim, small_frame(), cascade=SMALL[2])
    assert det.boxes, "the test frame should contain a detectable face"
    assert result.analysed and not result.overrun


def test_cycle_model_counts_the_engine_clocks(small_sim):
    """`bench/engine_model.py`, which weighs engine designs against the frame budget, counts
    the clocks of the engine as built: within 3 % of the RTL on real frames."""
    sys.path.insert(0, str(ROOT / "bench"))
    from engine_model import BUILT, frame_cycles
    cas = load_cascade(SMALL[2])
    for seed in (0, 3):
        frame = small_frame(seed)
        result, _ = check(small_sim, frame, cascade=SMALL[2])
        model = frame_cycles(stage_grids(frame, cas, small_sim.params), cas,
                             corners=small_sim.corners_per_clock, **BUILT)
        assert abs(model / result.cycles - 1) < 0.03, (seed, model, result.cycles)


@pytest.mark.parametrize("idle,stall", [(0.3, 0.0), (0.0, 0.5), (0.4, 0.6)])
def test_idle_input_and_backpressure(small_sim, idle, stall):
    small_sim.reset()
    check(small_sim, small_frame(5), cascade=SMALL[2], idle=idle, stall=stall, seed=3)


def test_overrun_flags_the_abandoned_frame_and_analyses_the_next(small_sim):
    small_sim.reset()
    a, b = small_frame(0), small_frame(4)
    first, last = frame_flags(120, 160)
    stream = np.concatenate([a[..., ::-1].reshape(-1, 3), b[..., ::-1].reshape(-1, 3)])
    results, _, _ = small_sim.run_stream(stream, np.tile(first, 2), np.tile(last, 2), ends=2)
    assert [r.overrun for r in results] == [True, False]
    assert not results[0].analysed and results[1].analysed
    want = detect(b, SMALL[2]).boxes
    assert results[1].boxes == [tuple(x) for x in want] != []


def test_malformed_frame_is_not_analysed(small_sim):
    small_sim.reset()
    good = small_frame(0)
    first, last = frame_flags(120, 160)
    cut = 160 * 50 + 30                     # a frame cut short mid-line, then a good frame
    stream = np.concatenate([good[..., ::-1].reshape(-1, 3)[:cut],
                             good[..., ::-1].reshape(-1, 3)])
    results, _, _ = small_sim.run_stream(stream, np.concatenate([first[:cut], first]),
                                         np.concatenate([last[:cut], last]), ends=2)
    assert results[0].bad_input and not results[0].analysed and not results[0].boxes
    assert results[1].analysed
    assert results[1].boxes == [tuple(x) for x in detect(good, SMALL[2]).boxes]


def test_raw_mode_returns_every_window(small_sim):
    params = DetectorParams(min_neighbors=0)
    small_sim.reset()
    small_sim.set_min_neighbors(0)
    try:
        result, det = check(small_sim, small_frame(), cascade=SMALL[2], params=params)
        assert len(result.boxes) == len(det.raw) > 1
    finally:
        small_sim.reset()


@pytest.fixture(scope="module")
def vga_sim():
    return DetectorSim(640, 480, "frontalface_default")


@pytest.mark.parametrize("photo", PHOTOS)
def test_real_photos_bit_exact(vga_sim, shared_data, photo):
    img = cv2.imread(str(shared_data / "faces-dlib" / photo))[..., ::-1]
    rgb = np.ascontiguousarray(cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA))
    result, det = check(vga_sim, rgb, frame=photo)
    assert result.boxes, f"no face found in {photo}"


def test_video_frame_720p_bit_exact(shared_data):
    import av
    with av.open(str(shared_data / "video" / "hamilton-640x360.mp4")) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k == 100:
                frame = f.to_ndarray(format="rgb24")
                break
    rgb = np.ascontiguousarray(cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_LINEAR))
    sim = DetectorSim(1280, 720, "frontalface_default")
    result, det = check(sim, rgb, frame=100)
    assert result.boxes


def test_cascade_too_big_for_the_engine_is_refused():
    with pytest.raises(CascadeError, match="at most 100"):
        build_program(load_cascade("frontalface_default"), 1024, max_pairs=100)


def test_frame_smaller_than_the_window_is_refused():
    with pytest.raises(CascadeError, match="not larger than"):
        Detector(40, 40, "frontalface_default")



@pytest.mark.parametrize("corners", [4, 6])
def test_engine_widths_bit_exact(corners):
    """The engine reads 8 corners a clock by default; 4 and 6 (fewer integral ring copies,
    for a device short of block RAM) give the same windows, boxes and counters, with stump
    and tree cascades, in more clocks."""
    for cascade in (SMALL[2], "frontalface_alt2"):
        sim = DetectorSim(*SMALL[:2], cascade, corners_per_clock=corners, quiet=True)
        for seed in (0, 3):
            check(sim, small_frame(seed), frame=seed, cascade=cascade)


def test_engine_width_is_checked():
    with pytest.raises(ValueError, match="corners_per_clock must be"):
        Detector(160, 120, SMALL[2], corners_per_clock=5)


def test_tree_cascade_alt2_bit_exact():
    """alt2's weak classifiers are two-node trees: the sequencer waits on each node's
    comparison and jumps to the chosen child."""
    sim = DetectorSim(160, 120, "frontalface_alt2")
    for shift in (0, 5):
        check(sim, small_frame(shift), frame=shift, cascade="frontalface_alt2")
