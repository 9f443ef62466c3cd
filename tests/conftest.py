import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OBSCURA_SHARED_DATA", ROOT.parent / "shared" / "data"))
BUILD = ROOT / "build"


@pytest.fixture(scope="session")
def shared_data():
    """The real test footage in ../shared/data (skips when this clone has none)."""
    if not SHARED.is_dir():
        pytest.skip(f"real test data not found at {SHARED} (set OBSCURA_SHARED_DATA)")
    return SHARED


def astronaut_rgb():
    from skimage import data
    return data.astronaut()


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
