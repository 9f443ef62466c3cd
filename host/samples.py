"""Real sample media that ship with the dependencies, for the demo and the tests."""

import numpy as np

__all__ = ["ASTRONAUT_FACE", "astronaut_bgr", "astronaut_face_crops"]

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
