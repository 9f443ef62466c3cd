"""Privacy check: how many faces do other detectors still find in obscura's output?

A face counts as *found again* when a detector, run on the anonymized frame, returns a box that
overlaps a reference face of that frame: a ground-truth face (dlib's XML) or a face the same
detector found on the original frame. Overlap is intersection over the smaller box's area >= 0.5,
looser than IoU on purpose: a detector that finds half a face through a mosaic has found it.
Every reference face is counted at most once per frame. Target: 0.
"""

import time

import numpy as np

__all__ = ["overlaps", "reference_faces", "faces_found_again", "PrivacyRun"]


def overlaps(a, b, frac=0.5):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return smaller > 0 and ix * iy >= frac * smaller


def reference_faces(truth, found_on_original):
    """Ground truth plus the detector's own finds on the original that no truth box explains."""
    refs = list(truth)
    refs += [f for f in found_on_original if not any(overlaps(f, t) for t in truth)]
    return refs


def faces_found_again(refs, found_on_output):
    """The reference faces that a detection on the anonymized frame overlaps."""
    return [r for r in refs if any(overlaps(f, r) for f in found_on_output)]


class PrivacyRun:
    """Run each peer detector on (original, anonymized) pairs and keep the counts."""

    def __init__(self, detectors):
        self.detectors = detectors
        self.counts = {name: {"reference_faces": 0, "found_again": 0, "frames": 0,
                              "frames_with_leak": 0, "seconds": 0.0} for name in detectors}
        self.examples = {name: [] for name in detectors}

    def add(self, label, original_rgb, anonymized_rgb, truth=()):
        for name, detect in self.detectors.items():
            t0 = time.perf_counter()
            refs = reference_faces(truth, detect(original_rgb))
            again = faces_found_again(refs, detect(anonymized_rgb))
            c = self.counts[name]
            c["seconds"] += time.perf_counter() - t0
            c["reference_faces"] += len(refs)
            c["found_again"] += len(again)
            c["frames"] += 1
            c["frames_with_leak"] += bool(again)
            if again and len(self.examples[name]) < 10:
                self.examples[name].append({"frame": label, "faces": [list(map(int, r))
                                                                      for r in again]})

    def summary(self):
        out = {}
        for name, c in self.counts.items():
            out[name] = {**c, "seconds": round(c["seconds"], 1),
                         "examples": self.examples[name]}
        return out


def side_by_side(tiles, labels, path, columns=4):
    """Write a grid of RGB tiles with a label above each (matplotlib) to `path`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = -(-len(tiles) // columns)
    h, w = tiles[0].shape[:2]
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 3.2, rows * 3.2 * h / w + 0.4))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, tile, label in zip(np.ravel(axes), tiles, labels):
        ax.imshow(tile)
        ax.set_title(label, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
