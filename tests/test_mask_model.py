"""The mask unit's model (the spec): each fixed-point step against a float reference, and its
behaviour rules."""

import math

import numpy as np
import pytest

from conftest import real_face_sample
from obscura.hw.mask import MaskUnit
from obscura.hw.mask_model import (
    RECIP,
    SQRT_PROFILE,
    MaskConfig,
    MaskModel,
    block_means,
    effect_colours,
    frames_to_stream,
    region_span,
    stream_to_frames,
)
from obscura.hw.types import Geometry, Mode, Shape
from obscura.sim.compare import stream_coords


def float_ellipse_span(x0, y0, x1, y1, y):
    """Pixels whose centre lies in the inscribed ellipse (float reference)."""
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    xs = np.arange(x0, x1)
    inside = ((xs + 0.5 - cx) / rx) ** 2 + ((y + 0.5 - cy) / ry) ** 2 <= 1
    return (xs[inside].min(), xs[inside].max() + 1) if inside.any() else None


def test_rom_contents():
    assert RECIP[1] == 65536 and RECIP[3] == 21845 and RECIP[1024] == 64
    assert SQRT_PROFILE[0] == 256 and SQRT_PROFILE[255] == 22
    assert RECIP.max() < 2 ** 17 and SQRT_PROFILE.max() < 2 ** 9


def test_ellipse_span_covers_the_float_ellipse():
    """The integer ellipse is never more than 2 px narrower than the float one on a side (the
    floor of the 8-bit profile index errs wide, the safe way), and adds little area."""
    rng = np.random.default_rng(0)
    narrower = 0
    area = extra = 0
    for _ in range(150):
        x0, y0 = (int(v) for v in rng.integers(0, 1000, 2))
        x1, y1 = x0 + int(rng.integers(2, 600)), y0 + int(rng.integers(2, 600))
        for y in range(y0, y1):
            lo, hi = region_span(x0, y0, x1, y1, Shape.ELLIPSE, y)
            ref = float_ellipse_span(x0, y0, x1, y1, y)
            if ref is None:
                assert hi - lo <= 2 * (x1 - x0) // 10 + 2
                continue
            narrower = max(narrower, lo - ref[0], ref[1] - hi)
            area += ref[1] - ref[0]
            extra += max(0, hi - lo - (ref[1] - ref[0]))
    assert narrower <= 2
    assert extra < 0.02 * area


def test_box_span_is_exact_and_empty_outside():
    assert region_span(10, 20, 30, 40, Shape.BOX, 20) == (10, 30)
    assert region_span(10, 20, 30, 40, Shape.BOX, 39) == (10, 30)
    for y in (19, 40):
        lo, hi = region_span(10, 20, 30, 40, Shape.BOX, y)
        assert lo == hi
    lo, hi = region_span(30, 20, 10, 40, Shape.BOX, 25)      # x1 < x0: no region
    assert lo == hi
    # The ellipse's widest line spans the whole box.
    assert region_span(0, 0, 100, 101, Shape.ELLIPSE, 50) == (0, 100)


def test_block_means_against_float():
    """floor(2^16 / n) as reciprocal: below the true mean by less than 1 + 255 n / 2^16 LSB
    (exact floors for full blocks, whose n is a power of two)."""
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (45, 70, 3))
    for block in (8, 16, 32):
        means = block_means(frame, block)
        nby, nbx = -(-45 // block), -(-70 // block)
        assert means.shape == (nby, nbx, 3)
        for by in range(nby):
            for bx in range(nbx):
                ref = frame[by * block:(by + 1) * block, bx * block:(bx + 1) * block].mean((0, 1))
                n = min(block, 45 - by * block) * min(block, 70 - bx * block)
                assert np.all(means[by, bx] <= ref + 1e-9)
                assert np.all(ref - means[by, bx] < 1 + 255 * n / 65536)
        # Full blocks are exact floors (power-of-two pixel counts).
        full = frame[:block, :block].reshape(-1, 3).sum(0) // (block * block)
        assert (means[0, 0] == full).all()


def test_blur_of_constant_is_constant_and_mosaic_is_block_mean():
    means = np.full((4, 5, 3), 77, np.int64)
    xs = np.arange(0, 80)
    for y in (0, 7, 31, 63):
        assert (effect_colours(Mode.BLUR, 16, means, xs, y) == 77).all()
    means[1, 2] = 200
    assert (effect_colours(Mode.MOSAIC, 16, means, np.arange(32, 48), 20) == 200).all()


def test_blur_removes_facial_detail():
    """Blur strength: a 16 px block leaves under 5% of a real face's Laplacian energy."""
    import cv2
    frame, boxes = real_face_sample(640, 360)
    cfg = MaskConfig(mode=Mode.BLUR, block=16, boxes=boxes)
    out = MaskModel().process_frames([frame, frame], cfg)[1]
    for x0, y0, x1, y1 in boxes:
        before = cv2.Laplacian(cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY), cv2.CV_64F)
        after = cv2.Laplacian(cv2.cvtColor(out[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY), cv2.CV_64F)
        assert after[2:-2, 2:-2].var() < 0.05 * before[2:-2, 2:-2].var()


def test_first_frame_after_reset_fails_closed_then_effects_apply():
    frame, boxes = real_face_sample(96, 64)
    cfg = MaskConfig(mode=Mode.MOSAIC, block=8, color=(1, 2, 3), boxes=boxes)
    model = MaskModel(Geometry(128, 128))
    out0, out1 = model.process_frames([frame, frame], cfg)
    assert (out0 == [1, 2, 3]).all()
    outside = np.ones(frame.shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        outside[y0:y1, x0:x1] = False
    assert (out1[outside] == frame[outside]).all()
    assert (out1[~outside] != frame[~outside]).any()
    assert model.protocol_errors == 0 and model.frames == 2


def test_block_size_change_fills_regions_for_one_frame():
    frame, boxes = real_face_sample(96, 64)
    model = MaskModel(Geometry(128, 128))
    cfgs = [MaskConfig(block=8, boxes=boxes, color=(5, 5, 5)),
            MaskConfig(block=8, boxes=boxes, color=(5, 5, 5)),
            MaskConfig(block=16, boxes=boxes, color=(5, 5, 5)),
            MaskConfig(block=16, boxes=boxes, color=(5, 5, 5))]
    outs = model.process_frames([frame] * 4, lambda n: cfgs[n])
    x0, y0, x1, y1 = boxes[0]
    assert (outs[2][y0:y1, x0:x1] == 5).all()
    assert not (outs[3][y0:y1, x0:x1] == 5).all()


def test_a_first_in_the_middle_of_a_line_fills_the_new_frame_whole():
    """A `first` mid-line cuts the frame before it (filled from there) and starts a frame whose
    pixels would be masked in the wrong coordinates: that frame is filled whole, counted once,
    and the next clean frame is masked again."""
    frame, boxes = real_face_sample(96, 64)
    cfg = MaskConfig(mode=Mode.MOSAIC, block=8, color=(5, 6, 7), boxes=boxes)
    model = MaskModel(Geometry(128, 128))
    model.process_frames([frame, frame], cfg)
    rgb, first, last = frames_to_stream([frame, frame])
    cut = 96 * 10 + 40                       # a second `first` at pixel 40 of line 10
    first[cut] = True
    errors = model.protocol_errors
    out = model.process_stream(rgb, first, last, cfg)
    fill = np.array([5, 6, 7], np.uint8)
    assert not (out[:cut] == fill).all(1).all()
    assert (out[cut:96 * 64] == fill).all(), "the frame after a mid-line cut leaked"
    assert model.protocol_errors == errors + 1
    nxt = out[96 * 64:].reshape(frame.shape)    # vouched again (regions filled: no means)
    assert not (nxt == fill).all() and (nxt != frame).any()
    x0, y0, x1, y1 = boxes[0]
    face = model.process_frames([frame], cfg)[0][y0:y1, x0:x1]   # and the mosaic is back
    assert not (face == fill).all() and (face != frame[y0:y1, x0:x1]).any()


def test_stream_helpers_round_trip():
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (3, 4, 3), dtype=np.uint8) for _ in range(2)]
    rgb, first, last = frames_to_stream(frames)
    assert first.sum() == 2 and last.sum() == 6
    back = stream_to_frames(rgb, frames)
    assert all((a == b).all() for a, b in zip(frames, back))
    f, x, y = stream_coords(first, last)
    assert (f[:12] == 0).all() and (f[12:] == 1).all()
    assert list(x[:5]) == [0, 1, 2, 3, 0] and list(y[:5]) == [0, 0, 0, 0, 1]


@pytest.mark.parametrize("kwargs,message", [
    ({"block": 12}, "block must be one of (8, 16, 32), not 12"),
    ({"color": (1, 2)}, "color must be three values in 0..255, not (1, 2)"),
    ({"color": (0, 0, 256)}, "color must be three values in 0..255, not (0, 0, 256)"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(ValueError) as err:
        MaskConfig(**kwargs)
    assert str(err.value) == message


@pytest.mark.parametrize("args,exc,message", [
    ((Geometry(), -1, 8), ValueError, "num_boxes must be a non-negative integer, not -1"),
    ((Geometry(), 0, 0), ValueError, "the mask unit needs at least one box or zone"),
    (((1280, 720), 32, 8), TypeError, "geometry must be a Geometry, not (1280, 720)"),
])
def test_unit_parameter_validation(args, exc, message):
    with pytest.raises(exc) as err:
        MaskUnit(*args)
    assert str(err.value) == message


def test_geometry_validation():
    with pytest.raises(ValueError) as err:
        Geometry(4096, 720)
    assert str(err.value) == "max_width must be an integer in 1..4095, not 4096"


def test_too_many_regions_for_the_model():
    model = MaskModel(Geometry(64, 64), num_boxes=1, num_zones=0)
    frame = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="at most 1 boxes and 0 zones"):
        model.process_frames([frame], MaskConfig(boxes=[(0, 0, 1, 1)] * 2))


def test_model_speed_is_whole_frame_vectorised():
    """The model handles a 720p frame a line at a time, not a pixel at a time."""
    frame, boxes = real_face_sample(1280, 720)
    assert math.prod(frame.shape[:2]) == 921600
    out = MaskModel().process_frames([frame, frame], MaskConfig(boxes=boxes))
    assert out[1].shape == frame.shape
