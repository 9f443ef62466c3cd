"""Real sample media that ship with the dependencies, for the demo and the tests."""

import numpy as np

__all__ = ["ASTRONAUT_FACE", "astronaut_bgr"]

#: The astronaut's face in scikit-image's 512 x 512 photo (x0, y0, x1, y1), half-open:
#: OpenCV's frontal-face Haar detection (177, 66, 272, 161) grown by about 20% each way.
ASTRONAUT_FACE = (158, 47, 291, 180)


def astronaut_bgr():
    """Return scikit-image's astronaut photo (public domain) as a BGR uint8 array."""
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[..., ::-1])
