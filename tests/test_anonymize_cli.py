"""`obscura anonymize` and the host API on real media (model backend: the sim backend runs the
same through the RTL and is covered by its own test)."""


import av
import cv2
import numpy as np
import pytest

import obscura
from conftest import SHARED
from obscura.cli import main
from obscura.evaluate import iou
from obscura.samples import sample_clip

PHOTO = SHARED / "faces-dlib" / "2008_002506.jpg"
VIDEO = SHARED / "video" / "hamilton-640x360.mp4"


def make_clip(path, n=12, start=100):
    """A short real clip with audio: frames start..start+n of the dev video, re-encoded, with
    the opening stretch of its audio (copied) and a GPS-like metadata tag."""
    return sample_clip(path, n=n, size=None, video=VIDEO, start=start,
                       metadata={"location": "+48.8582+002.2945/"})


@pytest.fixture()
def clip(tmp_path, shared_data):
    path = tmp_path / "clip.mp4"
    frames = make_clip(path)
    return path, frames


def test_image_faces_are_masked(tmp_path, shared_data):
    out = tmp_path / "out" / "photo.jpg"
    assert main(["anonymize", str(PHOTO), "-o", str(out), "--backend", "model", "-q"]) == 0
    src, got = cv2.imread(str(PHOTO)), cv2.imread(str(out))
    assert got.shape == src.shape
    for x0, y0, x1, y1 in [(329, 78, 438, 187), (224, 95, 315, 186), (125, 65, 215, 156)]:
        face_src, face_out = src[y0:y1, x0:x1].astype(int), got[y0:y1, x0:x1].astype(int)
        assert np.abs(face_src - face_out).mean() > 8, "face left visible"
    assert not list(out.parent.glob(".*")), "temporary file left behind"


def test_video_keeps_frames_rate_audio_and_drops_metadata(tmp_path, clip):
    path, frames = clip
    out = tmp_path / "anon.mp4"
    assert main(["anonymize", str(path), "-o", str(out), "--backend", "model", "-q",
                 "--mode", "solid", "--color", "255,0,255"]) == 0
    with av.open(str(path)) as a, av.open(str(out)) as b:
        assert b.streams.video[0].frames == a.streams.video[0].frames == len(frames)
        assert b.streams.video[0].average_rate == a.streams.video[0].average_rate
        assert len(b.streams.audio) == 1
        assert "location" not in b.metadata
        got = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
    # Frames 0 and 1 are filled entirely (fail closed until the detector has vouched).
    assert np.abs(got[0].astype(int) - [255, 0, 255]).mean() < 12
    magenta = (np.abs(got[5].astype(int) - [255, 0, 255]).sum(2) < 60).mean()
    assert 0.005 < magenta < 0.5          # faces filled, the rest of the frame shown


def test_never_overwrites_the_input(tmp_path, shared_data):
    src = tmp_path / "p.jpg"
    src.write_bytes(PHOTO.read_bytes())
    before = src.read_bytes()
    assert main(["anonymize", str(src), "-o", str(src), "--backend", "model", "-q"]) == 1
    assert src.read_bytes() == before


def test_corrupt_video_fails_cleanly_and_leaves_nothing(tmp_path, clip):
    path, _ = clip
    bad = tmp_path / "bad.mp4"
    data = path.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    good = tmp_path / "good.jpg"
    good.write_bytes(PHOTO.read_bytes())
    out = tmp_path / "out"
    code = main(["anonymize", str(bad), str(good), "-o", str(out), "--backend", "model",
                 "-q"])
    assert (out / "good.jpg").exists()
    assert code == 1                     # the bad video failed, the image was still done
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".")]
    assert not leftovers


def test_folder_tree_is_mirrored_and_other_files_skipped(tmp_path, shared_data, capsys):
    tree = tmp_path / "in"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.jpg").write_bytes(PHOTO.read_bytes())
    (tree / "notes.txt").write_text("not media")
    out = tmp_path / "out"
    assert main(["anonymize", str(tree), "-o", str(out), "--backend", "model", "-q"]) == 0
    assert (out / "in" / "sub" / "a.jpg").exists()
    assert "skipped" in capsys.readouterr().err


def test_api_still_image_applies_its_own_detections(shared_data):
    img = cv2.imread(str(PHOTO))
    with obscura.open("model") as acc:
        acc.configure(mode="solid", color=(0, 255, 0))
        out = acc.process_image(img)
        boxes = acc.boxes
    assert any(iou(b, (329, 78, 438, 187)) > 0.3 for b in boxes)
    assert (out[130, 380] == [0, 255, 0]).all()        # inside a face (BGR green)


def test_pynq_without_a_board_says_what_to_do():
    with pytest.raises(obscura.BackendError, match="PYNQ board"):
        obscura.open("pynq:overlay.bit")


def test_bad_settings_are_refused():
    acc = obscura.open("model")
    with pytest.raises(obscura.ObscuraError, match="mode must be"):
        acc.configure(mode="pixelate")
    with pytest.raises(obscura.ObscuraError, match="8 privacy zones"):
        acc.configure(zones=[(0, 0, 1, 1)] * 9)


def test_sim_backend_is_the_rtl_and_equals_the_model():
    """The API's `sim` backend runs the Verilator model of the whole pipeline and gives the
    model backend's output bit for bit (a small real frame, its own cascade)."""
    from conftest import astronaut_rgb
    img = np.ascontiguousarray(cv2.resize(astronaut_rgb()[0:240, 60:380], (160, 120),
                                          interpolation=cv2.INTER_AREA)[..., ::-1])
    outs = {}
    for backend in ("sim", "model"):
        with obscura.open(backend, cascade="frontalface_alt", quiet=True) as acc:
            acc.configure(mode="blur")
            outs[backend] = acc.process_image(img)
            assert acc.boxes, f"{backend}: no face tracked"
    assert (outs["sim"] == outs["model"]).all()
    assert (outs["sim"] != img).any()


def test_existing_output_needs_overwrite_and_report_is_written(tmp_path, shared_data):
    import json
    out, report = tmp_path / "a.jpg", tmp_path / "run.json"
    args = ["anonymize", str(PHOTO), "-o", str(out), "--backend", "model", "-q"]
    assert main(args + ["--report", str(report)]) == 0
    first = out.read_bytes()
    rec = json.loads(report.read_text())
    (item,) = rec["inputs"]
    assert rec["backend"] == "model" and rec["settings"]["mode"] == "mosaic"
    assert item["frames"] == 3 and item["boxes_per_frame"][-1] >= 3
    assert [f["frame"] for f in item["fail_closed_frames"]] == [0, 1]
    assert len(item["input_sha256"]) == 64 and item["output_sha256"] != item["input_sha256"]
    assert main(args) == 1 and out.read_bytes() == first       # refused, untouched
    assert main(args + ["--overwrite", "--mode", "solid"]) == 0
    assert out.read_bytes() != first


def test_the_quick_start_sample_clip_keeps_its_sound_through_anonymization(tmp_path):
    """The clip a fresh clone's quick start makes (no shared data): the astronaut panned and
    zoomed with a tone; anonymized, it keeps its frames, rate and audio, and the face is hidden
    once the detector has vouched for a frame."""
    clip, out = tmp_path / "sample.mp4", tmp_path / "anon.mp4"
    frames = sample_clip(clip, n=8)
    report = tmp_path / "run.json"
    assert main(["anonymize", str(clip), "-o", str(out), "--backend", "model", "-q",
                 "--report", str(report)]) == 0
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert b.streams.video[0].frames == a.streams.video[0].frames == len(frames) == 8
        assert b.streams.video[0].average_rate == a.streams.video[0].average_rate == 24
        assert [s.type for s in b.streams] == ["video", "audio"]
        assert abs(b.streams.audio[0].duration * b.streams.audio[0].time_base - 8 / 24) < 0.05
    import json
    record = json.loads(report.read_text())["inputs"][0]
    assert record["boxes_per_frame"][2:] == [1] * 6, record["boxes_per_frame"]
    assert [f["frame"] for f in record["fail_closed_frames"]] == [0, 1]


def test_a_video_cut_short_keeps_the_frames_before_the_cut(tmp_path):
    """A recording cut off (a dashcam losing power): the frames that decode are anonymized and
    written as a complete file, and the command says what was lost (exit code 1, report)."""
    clip, out, report = tmp_path / "cut.mkv", tmp_path / "anon.mkv", tmp_path / "run.json"
    sample_clip(clip, n=24)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) * 6 // 10])
    code = main(["anonymize", str(clip), "-o", str(out), "--backend", "model", "-q",
                 "--report", str(report)])
    assert code == 1
    with av.open(str(out)) as c:
        kept = sum(1 for _ in c.decode(video=0))
    assert 2 <= kept < 24
    import json
    (record,) = json.loads(report.read_text())["inputs"]
    assert record["frames"] == kept and "anonymized into" in record["error"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
