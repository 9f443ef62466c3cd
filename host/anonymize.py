"""`obscura anonymize`: images, videos, folders and live sources through an accelerator.

Privacy rules: inputs are never overwritten; outputs are written to a temporary file next to
the destination and renamed into place only when complete (an interrupted or failed run leaves
no partial output; a video that breaks off gives the frames before the break, as a complete
file, and an error that says so); still images lose their EXIF (OpenCV writes none) and videos
their container metadata (GPS, creation time, device tags) unless `keep_metadata`; no frame is
written anywhere else.
"""

import os
import sys
import tempfile
from pathlib import Path

from .errors import InputError, ObscuraError, TruncatedVideoError
from .media import IMAGE_EXTENSIONS

__all__ = ["anonymize_path", "VIDEO_EXTENSIONS", "plan"]

VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}


def _atomic_target(dest):
    """A temporary file beside `dest` (same file system, so the final rename is atomic), with
    the permissions a normally created file would have."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=dest.suffix, dir=dest.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def _same_file(a, b):
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def plan(inputs, output):
    """Return [(source, destination)] for the inputs; folders are walked recursively and
    mirrored under `output`; non-media files are reported and skipped."""
    jobs, skipped = [], []
    many = len(inputs) > 1 or any(Path(i).is_dir() for i in inputs)
    for item in inputs:
        src = Path(item)
        if src.is_dir():
            for path in sorted(src.rglob("*")):
                if path.is_file():
                    if path.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
                        jobs.append((path, Path(output) / src.name / path.relative_to(src)))
                    else:
                        skipped.append(path)
        elif src.is_file():
            dest = Path(output) / src.name if many or Path(output).is_dir() else Path(output)
            jobs.append((src, dest))
        else:
            raise InputError(f"{src}: no such file or folder")
    for src, dest in jobs:
        if _same_file(src, dest):
            raise InputError(f"{src}: the output would overwrite the input; choose another "
                             f"-o/--output")
    return jobs, skipped


def anonymize_path(acc, src, dest, keep_metadata=False, keep_audio=True, codec="libx264",
                   crf=18, progress=None):
    """Anonymize one image or video file into `dest` (atomically). `progress(done, total)` is
    called after each video frame (`total`: the frames the file announces, None if unknown)."""
    src, dest = Path(src), Path(dest)
    ext = src.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return _image(acc, src, dest)
    if ext in VIDEO_EXTENSIONS:
        return _video(acc, src, dest, keep_metadata, keep_audio, codec, crf, progress)
    raise InputError(f"{src}: unsupported file type {ext!r} (images: "
                     f"{', '.join(sorted(IMAGE_EXTENSIONS))}; videos: "
                     f"{', '.join(sorted(VIDEO_EXTENSIONS))})")


def _image(acc, src, dest):
    import cv2
    frame = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if frame is None:
        raise InputError(f"{src}: not a readable image (corrupt or unsupported); nothing "
                         f"written")
    out = acc.process_image(frame)
    tmp = _atomic_target(dest)
    try:
        if not cv2.imwrite(str(tmp), out):
            raise ObscuraError(f"{dest}: OpenCV could not write this image format")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return 1


def _video(acc, src, dest, keep_metadata, keep_audio, codec, crf, progress):
    import av
    try:
        inp = av.open(str(src))
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{src}: not a readable video ({exc}); nothing written") from exc
    tmp = _atomic_target(dest)
    done, broken = 0, None
    try:
        with inp:
            if not inp.streams.video:
                raise InputError(f"{src}: no video stream")
            vin = inp.streams.video[0]
            rate = vin.average_rate or vin.guessed_rate or 30
            # Frames the file announces (its index, or its header's duration): fewer decoded
            # means it was cut short.
            total = vin.frames or (round(float(inp.duration / 1e6 * rate)) if inp.duration
                                   else None)
            ain = inp.streams.audio[0] if keep_audio and inp.streams.audio else None
            with av.open(str(tmp), "w", format=_container_format(dest)) as out:
                if keep_metadata:
                    out.metadata.update(inp.metadata)
                vout = out.add_stream(codec, rate=rate)
                vout.width, vout.height = vin.codec_context.width, vin.codec_context.height
                vout.pix_fmt = "yuv420p"
                vout.time_base = vin.time_base
                vout.options = {"crf": str(crf)} if codec in ("libx264", "libx265") else {}
                aout = out.add_stream_from_template(ain) if ain is not None else None
                streams = [vin] + ([ain] if ain is not None else [])
                packets = inp.demux(streams)
                while True:
                    try:
                        packet = next(packets, None)
                        frames = packet.decode() if packet is not None and \
                            packet.stream is vin else []
                    except av.error.FFmpegError as exc:
                        broken = exc            # keep what decoded before it
                        break
                    if packet is None:
                        break
                    for frame in frames:
                        bgr = acc.process(frame.to_ndarray(format="bgr24"))
                        vf = av.VideoFrame.from_ndarray(bgr, format="bgr24")
                        vf.pts, vf.time_base = frame.pts, frame.time_base
                        for p in vout.encode(vf):
                            out.mux(p)
                        done += 1
                        if progress:
                            progress(done, total)
                    if aout is not None and packet.stream is not vin and \
                            packet.dts is not None:
                        packet.stream = aout
                        out.mux(packet)
                if broken is not None and done == 0:
                    raise InputError(f"{src}: corrupt video data before any frame ({broken}); "
                                     f"nothing written")
                for p in vout.encode():
                    out.mux(p)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    if broken is not None or (total and done < total - 1):
        why = f"corrupt video data ({broken})" if broken is not None else (
            f"the file announces {total} frames but ends after {done}")
        raise TruncatedVideoError(
            f"{src}: {why}: the {done} frame(s) before it were anonymized into {dest}; the "
            f"rest could not be read", dest, done)
    return done


def _container_format(dest):
    ext = Path(dest).suffix.lower()
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
            ".webm": "webm", ".avi": "avi"}.get(ext, "mp4")


def live(acc, source, dest, codec="libx264", crf=23, fps=30, progress=None):
    """Anonymize a camera index or a stream URL into `dest` until the source ends or Ctrl-C
    (`progress(done, None)` after each frame)."""
    import av
    import cv2
    cap = cv2.VideoCapture(int(source) if str(source).isdigit() else str(source))
    if not cap.isOpened():
        raise InputError(f"{source}: cannot open the camera or stream (check the index or "
                         f"URL, and that nothing else is using it)")
    tmp = _atomic_target(dest)
    done = 0
    try:
        with av.open(str(tmp), "w", format=_container_format(dest)) as out:
            vout = None
            try:
                while True:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    if vout is None:
                        vout = out.add_stream(codec, rate=fps)
                        vout.height, vout.width = frame.shape[:2]
                        vout.pix_fmt = "yuv420p"
                    vf = av.VideoFrame.from_ndarray(acc.process(frame), format="bgr24")
                    for p in vout.encode(vf):
                        out.mux(p)
                    done += 1
                    if progress:
                        progress(done, None)
            except KeyboardInterrupt:
                print("obscura: stopped (Ctrl-C); finishing the file", file=sys.stderr)
            if vout is not None:
                for p in vout.encode():
                    out.mux(p)
        if done:
            os.replace(tmp, dest)
    finally:
        cap.release()
        tmp.unlink(missing_ok=True)
    return done
