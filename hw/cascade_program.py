"""The cascade as the detector engine's memories hold it: a "program" of corner groups.

Built at elaboration time from a quantized `Cascade` and the engine's integral-ring row stride:

* **groups**: every node's weighted corners (`detector_model._corner_terms`: a rectangle feature
  read as at most 9 integral-image corners with merged weights), `group` (2, 4, 6 or 8) per entry so
  the engine reads that many corners per clock. A corner is its address offset from the
  window's origin in the ring (`dy * stride + dx`) and its weight. Nodes are laid out weak
  classifier by weak classifier, stage by stage, root first, so a stage of stumps is one run
  of consecutive entries that the engine streams without waiting for any comparison.
* **nodes**: threshold and, per child, a leaf value or the pair address of a child node; for
  nodes of trees (weak classifiers with more than one node) the address to resume at after the
  weak classifier's leaf.
* **stages**: first and end pair address, weak classifier count, threshold.

A cascade that does not fit the engine's parameters raises `CascadeError` saying which limit.
"""

from dataclasses import dataclass

from .cascade import Cascade, CascadeError
from .detector_model import _corner_terms

__all__ = ["CascadeProgram", "build_program", "WEIGHT_BITS", "THRESH_BITS", "LEAF_BITS"]

#: Signed widths of the memories' fields (checked for every cascade at build time).
WEIGHT_BITS = 4          # merged corner weights of the face cascades lie in -4..4
THRESH_BITS = 22         # node thresholds, NODE_FRAC fraction bits
LEAF_BITS = 22           # leaf values, LEAF_FRAC fraction bits
STAGE_BITS = 30          # stage sums and thresholds


@dataclass(frozen=True)
class CascadeProgram:
    width: int
    height: int
    stride: int
    group: int           # corners per entry
    pairs: tuple         # ((offsets...), (weights...), last, wait, node)
    nodes: tuple         # (threshold, (is_leaf, leaf, pair) left, (...) right, resume)
    stages: tuple        # (pair_first, pair_end, count, threshold)

    @property
    def num_stages(self):
        return len(self.stages)


def _fits(value, bits, what, name):
    if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        raise CascadeError(f"cascade {name!r}: {what} {value} does not fit {bits} signed bits; "
                           f"this engine supports the OpenCV face cascades' ranges")


def build_program(cas: Cascade, stride, group=2, max_window=31, max_pairs=16384,
                  max_nodes=4096, max_stages=64):
    """Lay out `cas` for an engine whose integral ring has row stride `stride` and that reads
    `group` corners a clock."""
    if max(cas.width, cas.height) > max_window:
        raise CascadeError(f"cascade {cas.name!r}: window {cas.width}x{cas.height} is larger "
                           f"than the engine's {max_window}x{max_window}")
    if stride < cas.width + 1:
        raise CascadeError(f"cascade {cas.name!r}: window wider than the integral ring")
    terms = _corner_terms(cas)
    # Node order: per weak classifier, depth first from its root.
    order, owner = [], []
    for k, root in enumerate(cas.weak_root):
        stack = [int(root)]
        while stack:
            n = stack.pop()
            order.append(n)
            owner.append(k)
            for child in (cas.node_right[n], cas.node_left[n]):
                if child >= 0:
                    stack.append(int(child))
    new_index = {n: i for i, n in enumerate(order)}
    tree = [False] * cas.num_weak
    for n, k in zip(order, owner):
        if cas.node_left[n] >= 0 or cas.node_right[n] >= 0:
            tree[k] = True
    pairs, pair_first = [], {}
    for n, k in zip(order, owner):
        pair_first[n] = len(pairs)
        corners = [(dy * stride + dx, w) for dx, dy, w in terms[cas.node_feature[n]]]
        if not corners:
            corners = [(0, 0)]
        for _, w in corners:
            _fits(w, WEIGHT_BITS, "corner weight", cas.name)
        while len(corners) % group:
            corners.append((0, 0))
        for i in range(0, len(corners), group):
            last = i + group == len(corners)
            chunk = corners[i:i + group]
            pairs.append((tuple(c[0] for c in chunk), tuple(c[1] for c in chunk),
                          int(last), int(last and tree[k]), new_index[n]))
    # Where each weak classifier ends (its resume address for trees).
    weak_end = {}
    for n, k in zip(order, owner):
        weak_end[k] = pair_first[n] + 1
        while weak_end[k] < len(pairs) and pairs[weak_end[k] - 1][2] == 0:
            weak_end[k] += 1
    nodes = []
    for n, k in zip(order, owner):
        _fits(int(cas.node_threshold[n]), THRESH_BITS, "node threshold", cas.name)
        kids = []
        for child in (cas.node_left[n], cas.node_right[n]):
            if child < 0:
                leaf = int(cas.leaves[-child - 1])
                _fits(leaf, LEAF_BITS, "leaf value", cas.name)
                kids.append((1, leaf, 0))
            else:
                kids.append((0, 0, pair_first[int(child)]))
        nodes.append((int(cas.node_threshold[n]), kids[0], kids[1], weak_end[k]))
    stages = []
    for s in range(cas.num_stages):
        first, count = int(cas.stage_first[s]), int(cas.stage_count[s])
        _fits(int(cas.stage_threshold[s]), STAGE_BITS, "stage threshold", cas.name)
        if count < 2:
            # The engine forms the next stage's starting sum while a stage runs (one clock).
            raise CascadeError(f"cascade {cas.name!r}: stage {s} has {count} weak classifier; "
                               f"the engine needs at least 2 a stage (merge it into a "
                               f"neighbouring stage)")
        start = pair_first[int(cas.weak_root[first])]
        end = weak_end[first + count - 1]
        # Weak classifiers of a stage are consecutive in the layout, so its range is contiguous.
        stages.append((start, end, count, int(cas.stage_threshold[s])))
    for what, have, limit in (("corner groups", len(pairs), max_pairs),
                              ("nodes", len(nodes), max_nodes),
                              ("stages", len(stages), max_stages)):
        if have > limit:
            raise CascadeError(f"cascade {cas.name!r} has {have} {what}; the engine was built "
                               f"for at most {limit} (raise the detector's max_{what.split()[-1]}"
                               f" parameter)")
    return CascadeProgram(cas.width, cas.height, stride, group, tuple(pairs), tuple(nodes),
                          tuple(stages))
