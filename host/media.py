"""Read frames from image and video files as RGB numpy arrays, with clear errors."""

from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "iter_frames"]

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def _read_image(path):
    import cv2
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path}: not a readable image (corrupt, or a format OpenCV cannot "
                         "decode); check the file or convert it to PNG/JPEG")
    if img.dtype != np.uint8:
        img = (img / (256 if img.dtype == np.uint16 else img.max() or 1)).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def iter_frames(path):
    """Yield (frame_number, RGB frame) of an image (one frame) or a video file.

    Raise InputError for a missing, empty or undecodable file; a video that breaks off after
    some frames raises InputError after yielding the frames that decoded.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; pass the files in it")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        yield 0, _read_image(path)
        return
    import av
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{path}: not a readable video or image ({exc}); check the file") \
            from None
    n = 0
    with container:
        if not container.streams.video:
            raise InputError(f"{path}: has no video stream")
        try:
            for frame in container.decode(video=0):
                yield n, frame.to_ndarray(format="rgb24")
                n += 1
        except av.error.FFmpegError as exc:
            raise InputError(f"{path}: decoding stopped after {n} frames ({exc}); the file is "
                             "truncated or corrupt") from None
    if n == 0:
        raise InputError(f"{path}: no video frame could be decoded")
