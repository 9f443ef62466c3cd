"""Simulation harnesses: Amaranth's simulator, the Verilator C++ harness and cocotb benches."""
