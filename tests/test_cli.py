"""The `obscura` command line: detect's JSON output on real images and video, and its errors."""

import json

import av
import cv2
import numpy as np
import pytest

from conftest import astronaut_rgb
from obscura.cli import auto_downscale, main
from obscura.samples import ASTRONAUT_FACE


@pytest.fixture()
def astronaut_png(tmp_path):
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), astronaut_rgb()[..., ::-1])
    return path


@pytest.fixture()
def short_clip(tmp_path):
    """Three frames of the astronaut, panned, as an H.264 MP4 written with PyAV."""
    path = tmp_path / "clip.mp4"
    img = astronaut_rgb()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 480, 480, "yuv420p"
        for k in range(3):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[k * 8:k * 8 + 480,
                                                                        k * 8:k * 8 + 480]),
                                               format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_detect_json_on_a_real_photo(capsys, astronaut_png):
    code, out, err = run(capsys, "detect", "--json", str(astronaut_png))
    assert code == 0 and err == ""
    record = json.loads(out)
    assert record["source"] == str(astronaut_png)
    assert (record["frame"], record["width"], record["height"]) == (0, 512, 512)
    (box,) = record["boxes"]
    x0, y0, x1, y1 = ASTRONAUT_FACE
    assert box[0] >= x0 and box[1] >= y0 and box[2] <= x1 and box[3] <= y1


def test_detect_on_the_rtl_gives_the_models_boxes(capsys, tmp_path):
    """`detect --backend sim` runs the detector's RTL (Verilator; the 160x120 build the
    detector tests use) and finds the model's box on a real face."""
    img = cv2.resize(astronaut_rgb(), (320, 320), interpolation=cv2.INTER_AREA)[5:125, 60:220]
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), np.ascontiguousarray(img[..., ::-1]))
    args = ["detect", "--json", "--cascade", "frontalface_alt", "--downscale", "2", str(path)]
    boxes = {}
    for backend in ("model", "sim"):
        code, out, err = run(capsys, *args, "--backend", backend)
        assert code == 0, err
        boxes[backend] = json.loads(out)["boxes"]
    assert boxes["sim"] == boxes["model"] and len(boxes["model"]) == 1, boxes


def test_detect_every_video_frame(capsys, short_clip):
    code, out, _ = run(capsys, "detect", "--json", str(short_clip))
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["frame"] for r in records] == [0, 1, 2]
    assert all(len(r["boxes"]) == 1 for r in records)


def test_bad_inputs_are_reported_and_the_rest_processed(capsys, tmp_path, astronaut_png):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    code, out, err = run(capsys, "detect", "--json", str(junk), str(empty),
                         str(tmp_path / "missing.png"), str(astronaut_png))
    assert code == 1
    assert len(out.splitlines()) == 1                       # the good photo still processed
    assert "junk.mp4: not a readable video or image" in err
    assert "empty.jpg: the file is empty" in err
    assert "missing.png: no such file" in err
    assert "Traceback" not in err


def test_truncated_video_keeps_the_frames_that_decoded(capsys, tmp_path, short_clip):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(short_clip.read_bytes()[: short_clip.stat().st_size // 2])
    code, out, err = run(capsys, "detect", "--json", str(cut))
    assert code in (0, 1)
    assert "Traceback" not in err
    if code == 1:
        assert "cut.mp4" in err


def test_unknown_cascade(capsys, astronaut_png):
    code, _, err = run(capsys, "detect", "--cascade", "eyes", str(astronaut_png))
    assert code == 1 and "unknown cascade 'eyes'" in err


def test_auto_downscale():
    assert [auto_downscale(w) for w in (500, 1279, 1280, 1920, 2560, 3840)] == [1, 1, 2, 2, 4, 4]


def test_usage_error_exit_code():
    with pytest.raises(SystemExit) as exc:
        main(["detect"])
    assert exc.value.code == 2
