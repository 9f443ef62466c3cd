"""Property tests of `obscura anonymize`'s input paths (model backend): whatever the file, a
clear error or a correct output, never a traceback and never a partial or temporary file."""

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obscura.cli import main


def _no_leftovers(folder):
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(w=st.integers(8, 200), h=st.integers(8, 160), channels=st.sampled_from([1, 3, 4]),
       ext=st.sampled_from([".png", ".jpg", ".bmp"]), seed=st.integers(0, 2**16))
def test_any_image_gives_an_output_or_a_clear_error(tmp_path_factory, w, h, channels, ext,
                                                    seed):
    tmp = tmp_path_factory.mktemp("img")
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w) if channels == 1 else (h, w, channels), np.uint8)
    src = tmp / f"in{ext}"
    assert cv2.imwrite(str(src), img)
    out = tmp / "out" / f"o{ext}"
    code = main(["anonymize", str(src), "-o", str(out), "--backend", "model", "-q"])
    if min(w, h) < 48:
        assert code == 1 and not out.exists()       # too small for the chip: said, not written
    else:
        assert code == 0
        got = cv2.imread(str(out))
        assert got.shape == (h, w, 3)
    assert _no_leftovers(tmp)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096), ext=st.sampled_from([".mp4", ".mkv", ".jpg", ".png"]))
def test_junk_bytes_are_refused_cleanly(tmp_path_factory, data, ext):
    tmp = tmp_path_factory.mktemp("junk")
    src = tmp / f"junk{ext}"
    src.write_bytes(data)
    out = tmp / "out"
    code = main(["anonymize", str(src), "-o", str(out), "--backend", "model", "-q"])
    assert code == 1
    assert not (out / src.name).exists() and _no_leftovers(tmp)
    assert src.read_bytes() == data
