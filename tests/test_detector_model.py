"""The fixed-point Haar detector model: each step against a float reference, its bounds, bad
inputs, and agreement with OpenCV's detectMultiScale on real photos."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import SHARED, astronaut_rgb
from obscura.hw.cascade import CASCADES, CascadeError, cascade_path, load_cascade
from obscura.hw.detector_model import (
    SQSUM_BITS,
    SUM_BITS,
    DetectorParams,
    detect,
    downscale,
    group,
    integrals,
    isqrt,
    luma,
    pyramid_levels,
    resize_level,
)

RNG = np.random.default_rng(5)


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# ------------------------------------------------------------------------- steps vs float

def test_luma_equals_opencv():
    img = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert (luma(img) == cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)).all()


def test_downscale_is_the_rounded_box_mean():
    y = RNG.integers(0, 256, (9, 11), dtype=np.uint8)
    for d in (1, 2, 4):
        out = downscale(y, d)
        assert out.shape == (9 // d, 11 // d)
        ref = y[:9 // d * d, :11 // d * d].reshape(9 // d, d, 11 // d, d).mean(axis=(1, 3))
        assert np.abs(out - ref).max() <= 0.5


def test_resize_close_to_float_bilinear():
    """Close to float bilinear sampling at the same positions: the 8-bit weights are truncated
    (up to 1/256 of a step per axis) and the result rounded."""
    base = cv2.resize(luma(astronaut_rgb()), (160, 120), interpolation=cv2.INTER_AREA)
    b = base.astype(float)
    for f in (1.2, 1.44, 2.0736):
        fq = round(f * 65536)
        ws, hs = round(160 / f), round(120 / f)
        out = resize_level(base, fq, ws, hs).astype(float)
        sx = np.maximum((np.arange(ws) + 0.5) * fq / 65536 - 0.5, 0)
        sy = np.maximum((np.arange(hs) + 0.5) * fq / 65536 - 0.5, 0)
        x0 = np.minimum(sx.astype(int), 159)
        y0 = np.minimum(sy.astype(int), 119)
        x1, y1 = np.minimum(x0 + 1, 159), np.minimum(y0 + 1, 119)
        fx, fy = (sx - x0)[None, :], (sy - y0)[:, None]
        ref = ((b[y0][:, x0] * (1 - fx) + b[y0][:, x1] * fx) * (1 - fy) +
               (b[y1][:, x0] * (1 - fx) + b[y1][:, x1] * fx) * fy)
        assert np.abs(out - ref).max() <= 1.5 and np.abs(out - ref).mean() < 0.5


def test_integrals_wrap_but_window_sums_are_exact():
    img = np.full((1080, 1920), 255, np.uint8)        # the largest frame, all white
    s, q = integrals(img)
    assert s.max() < 2 ** SUM_BITS and q.max() < 2 ** SQSUM_BITS
    # A 31 x 31 window (the largest the engine takes) anywhere in the frame sums exactly.
    for y, x in ((0, 0), (1000, 1800), (517, 933)):
        rs = (s[y + 31, x + 31] - s[y, x + 31] - s[y + 31, x] + s[y, x]) % 2 ** SUM_BITS
        rq = (q[y + 31, x + 31] - q[y, x + 31] - q[y + 31, x] + q[y, x]) % 2 ** SQSUM_BITS
        assert rs == 31 * 31 * 255 and rq == 31 * 31 * 255 ** 2
    # The largest weighted feature value fits the signed range of SUM_BITS.
    assert 3 * 31 * 31 * 255 < 2 ** (SUM_BITS - 1)


def test_isqrt_exact():
    v = np.concatenate([np.arange(0, 5000), RNG.integers(0, 2 ** 40, 5000)]).astype(np.int64)
    r = isqrt(v)
    assert ((r * r <= v) & ((r + 1) * (r + 1) > v)).all()


def test_pyramid_scales_and_sizes():
    cas = load_cascade("frontalface_default")
    levels = pyramid_levels(640, 360, cas, DetectorParams())
    assert levels[0] == (65536, 640, 360, 2)
    fs = [lv[0] / 65536 for lv in levels]
    assert all(abs(b / a - 1.2) < 1e-3 for a, b in zip(fs, fs[1:]))
    assert all(lv[2] > cas.height for lv in levels)
    assert all(lv[3] == (1 if lv[0] >= 2 * 65536 else 2) for lv in levels)


def test_quantized_cascade_matches_the_xml_floats():
    cas = load_cascade("frontalface_alt2")
    assert (cas.width, cas.height, cas.num_stages) == (20, 20, 20)
    assert cas.max_depth == 2             # alt2 has two-node trees
    assert np.abs(cas.leaves).max() < 2 ** 20
    assert load_cascade("frontalface_default").max_depth == 1


# ------------------------------------------------------------------------- grouping

def test_grouping_needs_more_than_min_neighbors():
    raw = [(100, 100, 40, 40)] * 3 + [(101, 99, 41, 41)] + [(300, 300, 24, 24)] * 2
    boxes, overflow = group(raw, 3)
    assert boxes == [(100, 100, 40, 40)] and overflow == 0
    assert group(raw, 0) == (raw, 0)


def test_grouping_drops_small_boxes_inside_big_ones():
    raw = [(100, 100, 80, 80)] * 6 + [(120, 120, 30, 30)] * 4
    boxes, _ = group(raw, 3)
    assert boxes == [(100, 100, 80, 80)]


def test_grouping_counts_overflow():
    raw = [(10 * i, 0, 5, 5) for i in range(10)]
    _, overflow = group(raw, 1, max_clusters=4)
    assert overflow == 6


# ------------------------------------------------------------------------- bad inputs

def test_tiny_and_empty_images_give_no_boxes():
    for shape in ((0, 0, 3), (1, 1, 3), (20, 30, 3), (47, 47, 3)):
        assert detect(np.zeros(shape, np.uint8)).boxes == []


def test_grayscale_input_equals_rgb():
    rgb = astronaut_rgb()
    assert detect(luma(rgb)).boxes == detect(rgb).boxes


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError, match="expected an H x W x 3 image"):
        detect(np.zeros((4, 4, 2), np.uint8))


@pytest.mark.parametrize("text,message", [
    ("not xml", "not a readable XML file"),
    ("<opencv_storage><cascade><featureType>LBP</featureType></cascade></opencv_storage>",
     "not an OpenCV Haar cascade"),
    ("<opencv_storage><cascade><featureType>HAAR</featureType><width>24</width>"
     "<height>24</height><features/><stages/></cascade></opencv_storage>", "has no stages"),
    ("<opencv_storage><cascade><featureType>HAAR</featureType><width>x</width>"
     "</cascade></opencv_storage>", "damaged cascade"),
])
def test_damaged_cascades_are_rejected(tmp_path, text, message):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(CascadeError, match=message):
        load_cascade(str(path))


def test_tilted_features_are_rejected(tmp_path):
    src = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    path = tmp_path / "tilted.xml"
    path.write_text(src.read_text().replace("<tilted>0</tilted>", "<tilted>1</tilted>", 1)
                    if "<tilted>0</tilted>" in src.read_text()
                    else src.read_text().replace("<rects>", "<tilted>1</tilted><rects>", 1))
    with pytest.raises(CascadeError, match="tilted"):
        load_cascade(str(path))


def test_unknown_cascade_name():
    with pytest.raises(CascadeError, match="unknown cascade 'eyes'"):
        cascade_path("eyes")


@pytest.mark.parametrize("kwargs,message", [
    ({"scale_factor": 1.0}, "scale_factor must be in 1.01..2.0"),
    ({"downscale": 3}, "downscale must be 1, 2 or 4"),
    ({"threshold_offset": 128}, "threshold_offset must be in -128..127"),
])
def test_params_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DetectorParams(**kwargs)


def test_threshold_offset_shifts_every_stage_threshold():
    """The offset (1/64 of a leaf value) is the cascade with every stage threshold moved:
    negative finds more raw windows, positive fewer, on a real face."""
    from dataclasses import replace

    from obscura.samples import astronaut_face_crops
    frame = astronaut_face_crops([0], 160, 120)[0]
    cas = load_cascade("frontalface_alt")
    raw = {}
    for off in (-32, 0, 32):
        params = DetectorParams(downscale=1, min_neighbors=0, threshold_offset=off)
        shifted = replace(cas, stage_threshold=cas.stage_threshold + off * 1024, cache={})
        got = detect(frame, cas, params)
        assert got.raw == detect(frame, shifted, DetectorParams(downscale=1,
                                                                min_neighbors=0)).raw
        raw[off] = len(got.raw)
    assert raw[-32] > raw[0] > raw[32] > 0, raw


# ------------------------------------------------------------------------- agreement with OpenCV

def opencv_boxes(rgb, name, sf, mn, min_size):
    cc = cv2.CascadeClassifier(str(cascade_path(name)))
    found = cc.detectMultiScale(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), sf, mn,
                                minSize=(min_size, min_size))
    return [(x, y, x + w, y + h) for x, y, w, h in found]


def dev_images():
    images = [("astronaut", astronaut_rgb())]
    for path in sorted((SHARED / "faces-dlib").glob("*.jpg")):
        if path.name == "bald_guys.jpg":
            continue        # 1986 x 1545: covered by the bench, too slow for every test run
        images.append((path.name, cv2.imread(str(path))[..., ::-1]))
    return images


@pytest.mark.parametrize("name", ["frontalface_default", "frontalface_alt2"])
def test_agreement_with_opencv_on_real_photos(name, shared_data):
    """At least 95% of OpenCV's detections are matched by a model detection (IoU >= 0.5) on the
    dlib photos and the astronaut (the astronaut alone has too few faces to judge)."""
    params = DetectorParams(scale_factor=1.2, min_neighbors=3, min_size=20, downscale=1)
    total = matched = 0
    misses = []
    for label, rgb in dev_images():
        ours = detect(rgb, name, params).boxes
        for box in opencv_boxes(rgb, name, 1.2, 3, 20):
            total += 1
            if any(iou(box, b) >= 0.5 for b in ours):
                matched += 1
            else:
                misses.append((label, box))
    assert total >= 20, "too few OpenCV detections to judge agreement"
    assert matched / total >= 0.95, f"{matched}/{total} matched; missed {misses}"


def test_lfw_crops_faces_found_and_non_faces_rejected_like_opencv():
    from skimage import data
    crops = data.lfw_subset()                       # 100 faces then 100 non-faces, 25 x 25
    params = DetectorParams(scale_factor=1.1, min_neighbors=0, min_size=0, downscale=1)
    cc = cv2.CascadeClassifier(str(cascade_path("frontalface_default")))
    ours, theirs = [], []
    for crop in crops:
        img = cv2.resize((crop * 255).astype(np.uint8), (50, 50), interpolation=cv2.INTER_LINEAR)
        ours.append(bool(detect(img, "frontalface_default", params).boxes))
        theirs.append(len(cc.detectMultiScale(img, 1.1, 0)) > 0)
    ours, theirs = np.array(ours), np.array(theirs)
    # Faces found at least as often as OpenCV (within one crop), non-faces rejected as often.
    assert ours[:100].sum() >= theirs[:100].sum() - 1
    assert ours[100:].sum() <= theirs[100:].sum() + 1
    assert (ours == theirs).mean() >= 0.95


def test_every_known_cascade_loads():
    for name in CASCADES:
        assert load_cascade(name).num_weak > 100
