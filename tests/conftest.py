import os
from pathlib import Path

import numpy as np
import pytest

from obscura.samples import ASTRONAUT_FACE, astronaut_bgr

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OBSCURA_SHARED_DATA", ROOT.parent / "shared" / "data"))
BUILD = ROOT / "build"
ULX3S_DIR = ROOT / "bitstreams" / "ulx3s-85f"


def load_board_module(name):
    """Import `bitstreams/ulx3s-85f/<name>.py` (the board's top and build script are not in
    the package)."""
    import importlib.util
    import sys
    sys.path.insert(0, str(ULX3S_DIR))
    spec = importlib.util.spec_from_file_location(f"ulx3s_{name}", ULX3S_DIR / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def shared_data():
    """The real test footage in ../shared/data (skips when this clone has none)."""
    if not SHARED.is_dir():
        pytest.skip(f"real test data not found at {SHARED} (set OBSCURA_SHARED_DATA)")
    return SHARED


def astronaut_rgb():
    return np.ascontiguousarray(astronaut_bgr()[..., ::-1])


def real_face_sample(width, height):
    """Return (RGB frame, face boxes) of a real photo scaled to width x height."""
    import cv2
    photo = SHARED / "faces-dlib" / "2008_002506.jpg"
    if photo.exists():
        img = cv2.imread(str(photo))[..., ::-1]
        faces = [(329, 78, 438, 187), (224, 95, 315, 186), (125, 65, 215, 156)]
    else:
        img = astronaut_rgb()
        faces = [ASTRONAUT_FACE]
    sy, sx = height / img.shape[0], width / img.shape[1]
    boxes = [(int(x0 * sx), int(y0 * sy), int(x1 * sx) + 1, int(y1 * sy) + 1)
             for x0, y0, x1, y1 in faces]
    frame = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame), boxes


def real_frame_rgb(width, height):
    """A real photo with faces as RGB (width x height): a dlib test photo when ../shared/data is
    present, scikit-image's astronaut otherwise."""
    import cv2
    photo = SHARED / "faces-dlib" / "2008_002506.jpg"
    if photo.exists():
        img = cv2.imread(str(photo))[..., ::-1]
    else:
        img = astronaut_rgb()
    return np.ascontiguousarray(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA))
