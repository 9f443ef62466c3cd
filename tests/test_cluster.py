"""`obscura anonymize --cluster` on a real Dask cluster on loopback: a scheduler and two worker
processes started here, a real clip cut from ../shared/data/video, output compared frame for
frame (lossless FFV1, plus the sha256 of every anonymized frame before encoding) with the
single-process run."""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from obscura import cluster  # noqa: E402
from obscura.accelerator import open as open_accelerator  # noqa: E402
from obscura.anonymize import anonymize_path  # noqa: E402
from obscura.cli import main  # noqa: E402

FRAMES, GOP = 24, 8            # three chunks of 8 frames (keyframes at 0, 8, 16)
SETTINGS = {"backend": "model", "cascade": "frontalface_default", "configure": {"hold": 15}}


def _cut_clip(src, dest, frames, gop):
    """The first `frames` frames of `src` re-encoded with a keyframe every `gop` frames, and
    the audio of that span copied."""
    import av
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.time_base, vout.gop_size = vin.time_base, gop
        vout.options = {"crf": "18", "sc_threshold": "0"}
        aout = out.add_stream_from_template(ain)
        end = None
        for k, frame in enumerate(inp.decode(vin)):
            if k == frames:
                end = frame.pts * frame.time_base
                break
            vf = av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), format="bgr24")
            vf.pts, vf.time_base = frame.pts, frame.time_base
            out.mux(vout.encode(vf))
        out.mux(vout.encode())
        inp.seek(0)
        for p in inp.demux(ain):
            if p.dts is not None and p.pts * p.time_base < end:
                p.stream = aout
                out.mux(p)


def _decoded(path):
    """[(pts, BGR frame)] of the video and [(pts, bytes)] of the audio packets."""
    import av
    with av.open(str(path)) as c:
        video = [(f.pts, f.to_ndarray(format="bgr24")) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        audio = [(p.pts, bytes(p)) for p in c.demux(audio=0) if p.size]
    return video, audio


def assert_same_video(got, want):
    (gv, ga), (wv, wa) = _decoded(got), _decoded(want)
    assert len(gv) == len(wv) == FRAMES
    assert [p for p, _ in gv] == [p for p, _ in wv], "frame timestamps differ"
    for k, ((_, g), (_, w)) in enumerate(zip(gv, wv)):
        if not np.array_equal(g, w):
            y, x = np.argwhere((g != w).any(axis=2))[0]
            pytest.fail(f"frame {k} differs first at x={x}, y={y}: got {g[y, x]}, "
                        f"expected {w[y, x]}")
    assert ga and ga == wa, "audio not copied unchanged"


class _Recorder:
    """An accelerator that also keeps the sha256 of each anonymized frame."""

    def __init__(self, acc):
        self.acc, self.hashes = acc, []

    def process(self, frame):
        out = self.acc.process(frame)
        self.hashes.append(hashlib.sha256(out.tobytes()).hexdigest())
        return out


@pytest.fixture(scope="module")
def clip(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("cluster") / "clip.mp4"
    _cut_clip(shared_data / "video" / "hamilton-640x360.mp4", path, FRAMES, GOP)
    return path


@pytest.fixture(scope="module")
def single(clip):
    """The single-process run: output file, per-frame hashes, the accelerator's log."""
    dest = clip.with_name("single.mkv")
    with open_accelerator("model") as acc:
        acc.configure(hold=15)
        rec = _Recorder(acc)
        assert anonymize_path(rec, clip, dest, codec="ffv1") == FRAMES
        return dest, rec.hashes, acc.frame_log


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def loopback(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1; yields (address, client,
    workers by name, start_worker)."""
    from distributed import Client
    dask = str(Path(sys.executable).with_name("dask"))
    logs = tmp_path_factory.mktemp("dask-logs")
    addr = f"tcp://127.0.0.1:{_free_port()}"
    procs, workers = [], {}

    def spawn(args, log):
        p = subprocess.Popen([dask, *args], stdout=subprocess.DEVNULL,
                             stderr=open(logs / log, "w"), start_new_session=True)
        procs.append(p)
        return p

    def start_worker(name):
        # No nanny: a killed worker stays dead (its chunk must move to the other worker),
        # and the worker keeps glibc's default malloc tuning (see cluster.connect).
        workers[name] = spawn(["worker", addr, "--nthreads", "1", "--no-nanny",
                               "--no-dashboard", "--name", name], f"{name}.log")

    spawn(["scheduler", "--host", "127.0.0.1", "--port", addr.rsplit(":", 1)[1],
           "--no-dashboard"], "scheduler.log")
    for name in ("w0", "w1"):
        start_worker(name)
    try:
        client = Client(addr, timeout=60)
        client.wait_for_workers(2, timeout=120)
        yield addr, client, workers, start_worker
        client.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_index_and_chunks(clip):
    index = cluster.index_video(clip)
    assert len(index.pts) == FRAMES and index.pts == tuple(sorted(index.pts))
    assert index.keyframes == (0, 8, 16)
    assert cluster.plan_chunks(index, 8) == [(0, 8), (8, 16), (16, 24)]
    assert cluster.plan_chunks(index, 12) == [(0, 24)], "an 8-frame tail joins the chunk"
    assert cluster.plan_chunks(index, 100) == [(0, 24)]


def test_board_tasks_need_a_board_worker():
    assert cluster.task_resources("pynq:overlay.bit") == {"obscura_board": 1}
    assert cluster.task_resources("model") is None
    assert cluster.task_resources("sim") is None


def test_cli_cluster_identical_to_single_run(clip, single, loopback, tmp_path):
    """The CLI through the loopback scheduler: same frames, timestamps, audio, audit log."""
    addr, *_ = loopback
    dest, report = tmp_path / "out.mkv", tmp_path / "run.json"
    assert main(["anonymize", str(clip), "-o", str(dest), "--backend", "model", "--codec",
                 "ffv1", "--cluster", addr, "--chunk-frames", str(GOP), "--report",
                 str(report), "-q"]) == 0
    assert_same_video(dest, single[0])
    rec = json.loads(report.read_text())["inputs"][0]
    log = single[2]
    assert rec["frames"] == FRAMES and rec["cluster"]["chunks"] == 3
    assert rec["boxes_per_frame"] == [r["boxes"] for r in log]
    assert rec["fail_closed_frames"] == [{"frame": k, "reason": r["reason"]}
                                         for k, r in enumerate(log) if r["fail_closed"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mkv", "run.json"]


def test_seams_that_do_not_match_are_rerun(clip, single, loopback, tmp_path):
    """With the shortest warm-up the tracker cannot have caught up with the face on screen:
    every seam is detected as different and rerun, and the output is still the single run's."""
    _, client, *_ = loopback
    dest = tmp_path / "out.mkv"
    [res] = cluster.anonymize_cluster(client, [(clip, dest)], SETTINGS, codec="ffv1",
                                      chunk_frames=GOP, warmup=cluster.MIN_WARMUP, quiet=True)
    assert "error" not in res, res.get("error")
    assert res["chunks"] == 3 and res["reruns"] == 2 and res["seams"] == ["strict"] * 3
    assert res["hashes"] == single[1]
    assert_same_video(dest, single[0])


def test_killed_worker_chunk_moves(clip, single, loopback, tmp_path):
    """SIGKILL a worker while it runs a chunk: Dask reruns the chunk on the other worker."""
    _, client, workers, start_worker = loopback
    dest = tmp_path / "out.mkv"
    out, killed = {}, []

    def run():
        out["res"] = cluster.anonymize_cluster(client, [(clip, dest)], SETTINGS, codec="ffv1",
                                               chunk_frames=GOP, quiet=True)
    t = threading.Thread(target=run)
    t.start()
    try:
        names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
        while t.is_alive() and not killed:
            busy = [names[a] for a, keys in client.processing().items() if keys]
            if busy:
                os.kill(workers[busy[0]].pid, signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.2)
    finally:
        t.join()
    try:
        assert killed and workers[killed[0]].wait(timeout=10) == -signal.SIGKILL
        [res] = out["res"]
        assert "error" not in res, res.get("error")
        assert res["hashes"] == single[1]
        assert_same_video(dest, single[0])
    finally:
        if killed:
            start_worker(killed[0])
            client.wait_for_workers(2, timeout=120)


def test_image_through_the_cluster(loopback, tmp_path):
    """A still image goes to a worker whole and comes back as the single run writes it."""
    import cv2

    from obscura.samples import astronaut_bgr
    _, client, *_ = loopback
    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), cv2.resize(astronaut_bgr(), (256, 256)))
    with open_accelerator("model") as acc:
        acc.configure(hold=15)
        anonymize_path(acc, src, tmp_path / "single.png")
        log = acc.frame_log
    [res] = cluster.anonymize_cluster(client, [(src, tmp_path / "out.png")], SETTINGS,
                                      quiet=True)
    assert "error" not in res, res.get("error")
    assert res["log"] == log and not log[-1]["fail_closed"]
    assert np.array_equal(cv2.imread(str(tmp_path / "out.png")),
                          cv2.imread(str(tmp_path / "single.png")))


def test_chunk_failing_every_try_fails_the_file(clip, loopback, tmp_path):
    _, client, *_ = loopback
    dest = tmp_path / "out.mkv"
    bad = dict(SETTINGS, cascade=str(tmp_path / "missing-cascade.xml"))
    [res] = cluster.anonymize_cluster(client, [(clip, dest)], bad, codec="ffv1",
                                      chunk_frames=GOP, retries=1, quiet=True)
    assert re.search(r"chunk \d of 3 \(frames \d+\.\.\d+\) failed on every try .*"
                     r"missing-cascade.*nothing written", res["error"]), res["error"]
    assert list(tmp_path.iterdir()) == [], "no output, no temporary file"


def test_cluster_arguments_are_checked(clip, tmp_path, capsys):
    assert main(["anonymize", "0", "-o", str(tmp_path / "cam.mp4"), "--cluster",
                 "local:1"]) == 1
    assert "cannot be split across a cluster" in capsys.readouterr().err
    assert main(["anonymize", str(clip), "-o", str(tmp_path / "o.mkv"), "--cluster",
                 "local:zero"]) == 1
    assert "positive worker count" in capsys.readouterr().err
    with pytest.raises(cluster.ClusterError, match="cannot reach the Dask scheduler"):
        with cluster.connect(f"tcp://127.0.0.1:{_free_port()}", timeout=1):
            pass
    assert list(tmp_path.iterdir()) == []


def test_replay_matches_the_tracker_model():
    """The seam proof's replay of a tracker update agrees with the model on random scenes."""
    import random

    from obscura.hw.tracker_model import TrackerModel
    from obscura.seams import replay_update
    rng = random.Random(10)
    tr = TrackerModel(320, 240, slots=4)       # few slots: merges happen too
    for _ in range(400):
        boxes = []
        for _ in range(rng.choice([0, 1, 2, 3, 5])):
            x, y = rng.randrange(0, 300, 4), rng.randrange(0, 220, 4)
            boxes.append((x, y, x + rng.choice([8, 16, 24]), y + rng.choice([8, 16, 24])))
        want, _ = replay_update(tr.slots, boxes, 3, 320, 240, 32)
        tr.update(boxes, hold=3)
        assert want == tr.slots


def test_ties_between_different_slots_are_found():
    from obscura.hw.tracker_model import Slot
    from obscura.seams import replay_update
    a, b = Slot(True, 0, 0, 10, 10, 0, 0, 1, 0), Slot(True, 10, 0, 20, 10, 0, 0, 1, 0)
    _, free = replay_update([a, b, Slot()], [(5, 0, 15, 10)], 15, 100, 100)
    assert not free, "equal overlap with two different slots: the index decides"
    _, free = replay_update([a, b, Slot()], [(2, 0, 12, 10)], 15, 100, 100)
    assert free
    _, free = replay_update([a, Slot(**vars(a)), Slot()], [(5, 0, 15, 10)], 15, 100, 100)
    assert free, "a tie between slots of the same contents cannot change the outcome"


def test_seam_kinds():
    from obscura.seams import PERMUTED, STRICT, seam_kind
    s = ((0, (1, 2, 3, 4), 0, 0, 0), (3, (5, 6, 7, 8), 1, 0, 2))
    swapped = ((1, (1, 2, 3, 4), 0, 0, 0), (0, (5, 6, 7, 8), 1, 0, 2))
    assert seam_kind(0, (), None, None, False) == STRICT
    assert seam_kind(5, s, STRICT, s, False) == STRICT
    assert seam_kind(5, s, PERMUTED, s, False) is None
    assert seam_kind(5, swapped, STRICT, s, True) == PERMUTED
    assert seam_kind(5, swapped, STRICT, s, False) is None
    assert seam_kind(5, s[:1], STRICT, s, True) is None


def test_ctrl_c_cancels_the_submitted_chunks(clip, loopback, tmp_path, monkeypatch):
    _, client, *_ = loopback
    dest = tmp_path / "out.mkv"
    submitted = []
    real_submit = cluster._Run.submit

    def submit(self, *args):
        fut = real_submit(self, *args)
        submitted.append(fut)
        return fut

    def interrupt(self, f, i):
        raise KeyboardInterrupt
    monkeypatch.setattr(cluster._Run, "submit", submit)
    monkeypatch.setattr(cluster._Run, "_progress", interrupt)
    with pytest.raises(KeyboardInterrupt):
        cluster.anonymize_cluster(client, [(clip, dest)], SETTINGS, codec="ffv1",
                                  chunk_frames=GOP, quiet=True)
    assert len(submitted) == 3
    # The first chunk back raised; the two longer ones (their warm-ups reach frame 0) were
    # still queued or running.
    assert sorted(f.status for f in submitted) == ["cancelled", "cancelled", "finished"]
    assert list(tmp_path.iterdir()) == []
