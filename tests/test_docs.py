"""The docs stay true: the generated register table matches its source, and every command in
README.md and docs/*.md runs.

Shell lines of ```sh blocks and whole ```python blocks are run in a scratch folder holding the
files the docs name (`photo.jpg`, `photos/`, `clip.mp4`, made from real footage). A line that
cannot run on a test machine carries `# (not run by the tests: reason)`; for a `make` line the
test still checks with `make -n` that the target exists.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import SHARED, astronaut_rgb, real_frame_rgb

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
NOT_RUN = re.compile(r"#\s*\(not run by the tests: ([^)]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def test_register_table_is_generated_from_the_map():
    current = (ROOT / "docs" / "registers.md").read_text()
    fresh = subprocess.run([sys.executable, "-m", "obscura.hw.regs"], capture_output=True,
                           text=True, check=True).stdout
    assert current == fresh, "docs/registers.md is stale: run `make docs`"


def doc_commands():
    """[(doc name, kind, text)] for every sh line and python block of the docs."""
    out = []
    for path in DOCS:
        for lang, body in FENCE.findall(path.read_text()):
            if lang == "sh":
                out += [(path.name, "sh", line.strip()) for line in body.splitlines()
                        if line.strip() and not line.lstrip().startswith("#")]
            elif lang == "python":
                out.append((path.name, "python", body))
    return out


COMMANDS = doc_commands()


def test_the_docs_have_commands():
    assert sum(kind == "sh" for _, kind, _ in COMMANDS) >= 15
    assert sum(kind == "python" for _, kind, _ in COMMANDS) >= 3


def _write_clip(path, frames, fps=30):
    import av
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        audio = out.add_stream("aac", rate=48000)
        samples = np.zeros((1, 1024), np.float32)
        t = 0
        for k, rgb in enumerate(frames):
            for p in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(p)
            while t < (k + 1) * 48000 // fps:      # audio as long as the video
                samples[0] = 0.1 * np.sin(np.arange(t, t + 1024) * 2 * np.pi * 440 / 48000)
                af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                af.sample_rate, af.pts = 48000, t
                for p in audio.encode(af):
                    out.mux(p)
                t += 1024
        for s in (stream, audio):
            for p in s.encode():
                out.mux(p)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder with the files the docs use: a real photo, a folder of photos, a short clip."""
    d = tmp_path_factory.mktemp("docs")
    photo = real_frame_rgb(500, 375)
    cv2.imwrite(str(d / "photo.jpg"), photo[..., ::-1])
    (d / "photos" / "trip").mkdir(parents=True)
    cv2.imwrite(str(d / "photos" / "a.jpg"), photo[..., ::-1])
    cv2.imwrite(str(d / "photos" / "trip" / "b.png"), astronaut_rgb()[..., ::-1])
    (d / "photos" / "notes.txt").write_text("not a photo\n")
    video = SHARED / "video" / "hamilton-640x360.mp4"
    if video.exists():
        import av
        with av.open(str(video)) as c:
            frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(12), c.decode(video=0))]
    else:
        frames = [np.roll(real_frame_rgb(320, 240), 4 * k, axis=1) for k in range(12)]
    _write_clip(d / "clip.mp4", frames)
    # The repository's venv, tests and settings, for lines that name them.
    for name in (".venv", "tests", "pyproject.toml"):
        if (ROOT / name).exists():
            (d / name).symlink_to(ROOT / name)
    return d


def _env():
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["OBSCURA_BUILD"] = str(ROOT / "build")     # reuse the Verilator models already built
    return env


@pytest.mark.parametrize("doc,kind,text", COMMANDS,
                         ids=[f"{d}:{k}:{t.splitlines()[0][:50]}" for d, k, t in COMMANDS])
def test_doc_command_runs(doc, kind, text, scratch):
    skip = NOT_RUN.search(text) if kind == "sh" else None
    if skip:
        assert skip.group(1).strip(), f"{doc}: say why `{text}` is not run"
        words = shlex.split(text.split("#", 1)[0])
        if words and words[0] == "make":
            dry = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True,
                                 text=True, env=_env())
            assert dry.returncode == 0, f"{doc}: `{text}`: {dry.stderr}"
        return
    # Each document works in its own copy: two documents may name the same output file.
    cwd = scratch.parent / f"{scratch.name}-{doc}"
    if not cwd.exists():
        shutil.copytree(scratch, cwd, symlinks=True)
    if kind == "sh":
        cmd = ["bash", "-c", text]
    else:
        (cwd / "snippet.py").write_text(text)
        cmd = [sys.executable, "snippet.py"]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=_env(),
                          timeout=900)
    assert proc.returncode == 0, (f"{doc}: `{text}` failed ({proc.returncode}):\n"
                                  f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
