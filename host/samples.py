"""Real sample media that ship with the dependencies, for the demo and the tests."""

import numpy as np

__all__ = ["ASTRONAUT_FACE", "astronaut_bgr", "astronaut_face_crops", "sample_clip"]

#: The astronaut's face in scikit-image's 512 x 512 photo (x0, y0, x1, y1), half-open:
#: OpenCV's frontal-face Haar detection (177, 66, 272, 161) grown by about 20% each way.
ASTRONAUT_FACE = (158, 47, 291, 180)


def astronaut_bgr():
    """Return scikit-image's astronaut photo (public domain) as a BGR uint8 array."""
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[..., ::-1])


def astronaut_face_crops(shifts, width=160, height=120):
    """Small RGB frames with one real face for the RTL tests: 320 x 240 crops of the astronaut,
    moved 4 pixels right per unit of each shift, scaled to width x height."""
    import cv2
    from skimage import data
    out = []
    for s in shifts:
        x0 = 60 + 4 * s
        img = data.astronaut()[0:240, x0:x0 + 320]
        out.append(np.ascontiguousarray(cv2.resize(img, (width, height),
                                                   interpolation=cv2.INTER_AREA)))
    return out


def _clip_frames_from_video(video, n, start, size):
    """Frames start..start+n of `video` (RGB), resized to `size` when given, and its rate."""
    import av
    import cv2
    frames = []
    with av.open(str(video)) as inp:
        vin = inp.streams.video[0]
        rate = vin.average_rate
        for k, f in enumerate(inp.decode(vin)):
            if k >= start:
                rgb = f.to_ndarray(format="rgb24")
                if size is not None:
                    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                frames.append(np.ascontiguousarray(rgb))
            if len(frames) == n:
                break
    return frames, rate


def _astronaut_pan_zoom(n, size):
    """n RGB frames of the astronaut, the view panning right and zooming in on the face."""
    import cv2
    from skimage import data
    img = data.astronaut()
    w, h = size
    frames = []
    for k in range(n):
        t = k / max(n - 1, 1)
        zoom = 1.0 + 0.4 * t                        # view 1.0 .. 1.4 times closer
        vw, vh = 400 / zoom, 400 * h / w / zoom
        cx, cy = 180 + 60 * t, 150                   # the face is at about (225, 113)
        x0, y0 = max(0.0, cx - vw / 2), max(0.0, cy - vh / 2)
        # An affine crop: sub-pixel pan and zoom without jumps between frames.
        m = np.float32([[vw / w, 0, x0], [0, vh / h, y0]])
        frames.append(np.ascontiguousarray(cv2.warpAffine(
            img, m, (w, h), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP)))
    return frames


def sample_clip(path, n=24, size=(320, 180), video=None, start=100, metadata=None):
    """Write a short real clip with audio to `path` (H.264 MP4, PyAV) and return its frames.

    From `video` (frames start..start+n resized to `size`, None keeps its size, with the
    opening stretch of its audio copied) when given, else scikit-image's astronaut panned and
    zoomed at 24 fps with a 440 Hz tone, so that a fresh clone has a real face with sound.
    `metadata` tags the container (the tests check that anonymization strips them)."""
    import fractions

    import av
    if video is not None:
        frames, rate = _clip_frames_from_video(video, n, start, size)
    else:
        frames, rate = _astronaut_pan_zoom(n, size or (320, 240)), fractions.Fraction(24)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        for key, value in (metadata or {}).items():
            out.metadata[key] = value
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
        seconds = n / float(rate)
        if video is not None:
            with av.open(str(video)) as inp:
                aout = out.add_stream_from_template(inp.streams.audio[0])
                packets = [p for p in inp.demux(inp.streams.audio[0]) if p.dts is not None]
        else:
            aout = out.add_stream("aac", rate=48000, layout="mono")
        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf.pts, vf.time_base = i, 1 / fractions.Fraction(rate)
            for p in vout.encode(vf):
                out.mux(p)
        for p in vout.encode():
            out.mux(p)
        if video is not None:
            for packet in packets:
                if packet.pts * packet.time_base > seconds:
                    break
                packet.stream = aout
                out.mux(packet)
        else:
            t = np.arange(int(48000 * seconds)) / 48000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, 0
            for p in aout.encode(af):
                out.mux(p)
            for p in aout.encode():
                out.mux(p)
    return frames
