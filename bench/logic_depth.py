"""The deepest register-to-register paths of a Yosys-mapped ECP5 netlist (JSON), in seconds.

nextpnr needs half an hour to place the ULX3S top before it estimates timing; this ranks the
paths by weighted logic depth straight from the netlist Yosys wrote, which found the board's
worst paths (a block RAM's output through a multiplexer into the mask unit's handshake, a
modulo by 9, a luma multiplier behind the input multiplexer). Weights, in LUT levels: LUT4 1,
PFU multiplexers 0.3, a carry cell 0.25, a multiplier 4, a block RAM's clock-to-out 3.

    python bench/logic_depth.py build/ulx3s-85f/obscura_ulx3s.json [--top 20] [--paths]
"""

import argparse
import collections
import json
import sys

#: Depth each combinational cell adds, in LUT levels.
WEIGHT = {"LUT4": 1.0, "PFUMX": 0.3, "L6MUX21": 0.3, "CCU2C": 0.25, "MULT18X18D": 4.0,
          "ALU54B": 4.0, "TRELLIS_DPR16X4": 1.2}
#: Cells whose outputs start a path (and whose inputs end one); a block RAM's output counts
#: its clock-to-out.
SOURCE_DEPTH = {"TRELLIS_FF": 0.0, "DP16KD": 3.0}
SEQUENTIAL = set(SOURCE_DEPTH) | {"TRELLIS_IO", "EHXPLLL", "DCCA", "ODDRX1F", "IOLOGIC",
                                  "SIOLOGIC"}
CLOCKS = {"CLK", "CLKA", "CLKB"}


def _inputs(cell, combinational_only):
    """Input bits of a cell; for LUT RAM only the read address (writes are registered)."""
    for port, bits in cell["connections"].items():
        if cell.get("port_directions", {}).get(port) != "input" or port in CLOCKS:
            continue
        if combinational_only and cell["type"] == "TRELLIS_DPR16X4" and \
                not port.startswith("RAD"):
            continue
        yield from (b for b in bits if isinstance(b, int))


def deepest_paths(netlist):
    """Return [(depth, endpoint name, [cells from start to end as 'TYPE:net'])], deepest
    first, one per endpoint register (its bits merged)."""
    top = next(m for m, v in netlist["modules"].items()
               if v.get("attributes", {}).get("top"))
    mod = netlist["modules"][top]
    cells = mod["cells"]
    name = {}
    for net, n in mod["netnames"].items():
        for b in n["bits"]:
            if isinstance(b, int) and (b not in name or len(net) < len(name[b])):
                name[b] = net
    driver = {}
    for cname, c in cells.items():
        for port, bits in c["connections"].items():
            if c.get("port_directions", {}).get(port) == "output":
                for b in bits:
                    if isinstance(b, int):
                        driver[b] = cname

    def out_name(cname):
        c = cells[cname]
        for port, bits in c["connections"].items():
            if c.get("port_directions", {}).get(port) == "output":
                for b in bits:
                    if isinstance(b, int) and b in name:
                        return name[b]
        return cname

    arrival = {}
    expanding = set()           # on the current search path (a combinational loop if seen)

    def arrive(start):
        # Iterative depth-first search: the netlist's cones are deeper than Python's stack.
        stack = [start]
        while stack:
            cname = stack[-1]
            if cname in arrival:
                stack.pop()
                continue
            c = cells[cname]
            if c["type"] in SEQUENTIAL:
                arrival[cname] = (SOURCE_DEPTH.get(c["type"], 0.0), None)
                stack.pop()
                continue
            preds = [driver[b] for b in _inputs(c, True) if b in driver]
            todo = [p for p in preds if p not in arrival and p not in expanding]
            if todo and cname not in expanding:
                expanding.add(cname)
                stack.extend(todo)
                continue
            # Inputs searched (any still unknown would close a loop): take the deepest.
            expanding.discard(cname)
            best = max(((arrival[p][0], p) for p in preds if p in arrival),
                       default=(0.0, None))
            arrival[cname] = (best[0] + WEIGHT.get(c["type"], 0.5), best[1])
            stack.pop()
        return arrival[start]

    ends = collections.defaultdict(lambda: (-1.0, None))
    for cname, c in cells.items():
        if c["type"] not in SOURCE_DEPTH:
            continue
        for b in _inputs(c, False):
            if b in driver:
                depth, _ = arrive(driver[b])
                key = out_name(cname).split("[")[0]
                if depth > ends[key][0]:
                    ends[key] = (depth, driver[b])
    out = []
    for key, (depth, last) in ends.items():
        path, p = [], last
        while p is not None:
            path.append(f"{cells[p]['type']}:{out_name(p)}")
            p = arrival[p][1]
        out.append((depth, key, path[::-1]))
    out.sort(key=lambda t: -t[0])
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("netlist", help="Yosys JSON netlist after synth_ecp5")
    parser.add_argument("--top", type=int, default=20, help="endpoints to list")
    parser.add_argument("--paths", action="store_true", help="print each path's cells")
    args = parser.parse_args(argv)
    with open(args.netlist) as f:
        paths = deepest_paths(json.load(f))
    for depth, end, cells in paths[:args.top]:
        print(f"{depth:5.1f}  {end}  ({len(cells)} cells)")
        if args.paths:
            for cell in cells:
                print(f"         {cell[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
