"""OpenCV Haar cascades (XML) parsed and quantized into the integer form the detector's cascade
memory holds.

Quantized form (docs/detector.md has the widths and why):

* feature rectangles: x, y, w, h in window pixels (5 bits each for windows up to 31 px) and an
  integer weight (the face cascades use -1, 2 and 3; a non-integer weight is rejected);
* node thresholds: t_q = round(t * 2**NODE_FRAC), signed, compared as
  `feature_sum * 2**NODE_FRAC < t_q * nf` with nf = isqrt(A * sqsum - sum**2), which is
  OpenCV's `feature_sum / nf < t` without a division;
* leaf values and stage thresholds: round(v * 2**LEAF_FRAC), signed.
"""

import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from obscura.errors import InputError

__all__ = ["Cascade", "CascadeError", "load_cascade", "cascade_path", "CASCADES", "NODE_FRAC",
           "LEAF_FRAC"]

#: Fraction bits of node thresholds (thresholds of the face cascades go down to ~1e-4).
NODE_FRAC = 20
#: Fraction bits of leaf values and stage thresholds.
LEAF_FRAC = 16
#: Cascade names this project knows, mapped to OpenCV's file names.
CASCADES = {
    "frontalface_default": "haarcascade_frontalface_default.xml",
    "frontalface_alt": "haarcascade_frontalface_alt.xml",
    "frontalface_alt2": "haarcascade_frontalface_alt2.xml",
    "profileface": "haarcascade_profileface.xml",
}


class CascadeError(InputError):
    """The cascade file is missing, damaged or uses something the engine does not support."""


@dataclass
class Cascade:
    """A quantized Haar cascade. Arrays are integers; see the module docstring for scales."""
    name: str
    width: int                   # window size in pixels
    height: int
    rects: np.ndarray            # (F, 3, 5): x, y, w, h, weight per rectangle (weight 0: none)
    node_feature: np.ndarray     # (N,) feature index of each node
    node_threshold: np.ndarray   # (N,) t_q
    node_left: np.ndarray        # (N,) next node index if value < threshold, or -leaf - 1
    node_right: np.ndarray       # (N,) the same for value >= threshold
    leaves: np.ndarray           # (L,) leaf values, LEAF_FRAC fraction bits
    weak_root: np.ndarray        # (K,) first node of each weak classifier
    stage_first: np.ndarray      # (S,) first weak classifier of each stage
    stage_count: np.ndarray      # (S,) weak classifiers per stage
    stage_threshold: np.ndarray  # (S,) LEAF_FRAC fraction bits
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # derived tables

    @property
    def num_stages(self):
        return len(self.stage_first)

    @property
    def num_weak(self):
        return len(self.weak_root)

    @property
    def max_depth(self):
        """Nodes on the longest root-to-leaf path of any weak classifier."""
        depth = 0
        for root in self.weak_root:
            stack = [(int(root), 1)]
            while stack:
                node, d = stack.pop()
                depth = max(depth, d)
                for nxt in (self.node_left[node], self.node_right[node]):
                    if nxt >= 0:
                        stack.append((int(nxt), d + 1))
        return depth


def cascade_path(name):
    """Return the path of a named cascade from `opencv-python-headless`, or `name` if it is a
    path to an existing file."""
    p = Path(name)
    if p.suffix == ".xml" and p.exists():
        return p
    if name not in CASCADES:
        raise CascadeError(f"unknown cascade {name!r}: use one of {', '.join(CASCADES)} or the "
                           "path of an OpenCV Haar cascade XML file")
    import cv2
    path = Path(cv2.data.haarcascades) / CASCADES[name]
    if not path.exists():
        raise CascadeError(f"{path} is missing: install opencv-python-headless>=4.10,<5 "
                           "(OpenCV 5 no longer ships the Haar cascades)")
    return path


def _floats(text):
    return [float(v) for v in text.split()]


def load_cascade(name="frontalface_default"):
    """Parse and quantize an OpenCV (new-format) Haar cascade XML file (cached per path)."""
    path = cascade_path(name)
    return _load(str(path), str(name), path.stat().st_mtime)


@functools.lru_cache(maxsize=16)
def _load(path, name, _mtime):
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise CascadeError(f"{path}: not a readable XML file ({exc})") from None
    node = root.find("cascade")
    if node is None:
        node = next(iter(root), None)
    try:
        if node is None or node.findtext("featureType", "").strip() != "HAAR":
            raise CascadeError(f"{path}: not an OpenCV Haar cascade (need <featureType>HAAR"
                               "</featureType>; old-format and LBP cascades are not supported)")
        width, height = int(node.findtext("width")), int(node.findtext("height"))
        if not (3 <= width <= 31 and 3 <= height <= 31):
            raise CascadeError(f"{path}: window {width}x{height} is outside 3..31 pixels")
        features = node.find("features")
        rects = np.zeros((len(features), 3, 5), np.int64)
        for fi, feat in enumerate(features):
            if int(feat.findtext("tilted", "0").strip() or 0):
                raise CascadeError(f"{path}: feature {fi} is tilted; the engine evaluates "
                                   "upright Haar features only")
            for ri, rect in enumerate(feat.find("rects")):
                if ri >= 3:
                    raise CascadeError(f"{path}: feature {fi} has more than 3 rectangles")
                x, y, w, h, weight = _floats(rect.text)
                if weight != round(weight):
                    raise CascadeError(f"{path}: feature {fi} has weight {weight}; the engine "
                                       "needs integer rectangle weights")
                if x < 0 or y < 0 or w < 1 or h < 1 or x + w > width or y + h > height:
                    raise CascadeError(f"{path}: feature {fi} rectangle {ri} lies outside the "
                                       f"{width}x{height} window")
                rects[fi, ri] = (x, y, w, h, weight)
        nodes_f, nodes_t, nodes_l, nodes_r, leaves, roots = [], [], [], [], [], []
        stage_first, stage_count, stage_thr = [], [], []
        for stage in node.find("stages"):
            weaks = stage.find("weakClassifiers")
            stage_first.append(len(roots))
            stage_count.append(len(weaks))
            stage_thr.append(float(stage.findtext("stageThreshold")))
            for weak in weaks:
                internal = _floats(weak.findtext("internalNodes"))
                leaf = _floats(weak.findtext("leafValues"))
                if len(internal) % 4 or not internal:
                    raise CascadeError(f"{path}: damaged internalNodes in stage "
                                       f"{len(stage_first) - 1}")
                base, leaf_base = len(nodes_f), len(leaves)
                roots.append(base)
                for k in range(0, len(internal), 4):
                    left, right, feat, thr = internal[k:k + 4]
                    if not 0 <= int(feat) < len(rects):
                        raise CascadeError(f"{path}: node refers to feature {int(feat)}, but "
                                           f"there are {len(rects)}")
                    # OpenCV: a child > 0 is a node index, <= 0 is leaf index -child.
                    for child, out in ((int(left), nodes_l), (int(right), nodes_r)):
                        out.append(base + child if child > 0 else -(leaf_base - child) - 1)
                    nodes_f.append(int(feat))
                    nodes_t.append(thr)
                leaves.extend(leaf)
    except CascadeError:
        raise
    except (AttributeError, TypeError, ValueError) as exc:
        raise CascadeError(f"{path}: damaged cascade ({type(exc).__name__}: {exc})") from None
    if not stage_first:
        raise CascadeError(f"{path}: the cascade has no stages")
    q = lambda values, frac: np.round(np.array(values) * (1 << frac)).astype(np.int64)  # noqa
    return Cascade(
        name=str(name), width=width, height=height, rects=rects,
        node_feature=np.array(nodes_f, np.int64), node_threshold=q(nodes_t, NODE_FRAC),
        node_left=np.array(nodes_l, np.int64), node_right=np.array(nodes_r, np.int64),
        leaves=q(leaves, LEAF_FRAC), weak_root=np.array(roots, np.int64),
        stage_first=np.array(stage_first, np.int64), stage_count=np.array(stage_count, np.int64),
        stage_threshold=q(stage_thr, LEAF_FRAC))
