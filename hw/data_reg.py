"""Data registers: flip-flops without a reset.

A block that is reset to abandon its work (the detector's engine and grouper, through a
`ResetInserter` on the abort) needs the reset only on its valid bits and control state; its
data registers are loaded before they are used. Leaving them without a reset keeps the reset's
fan-out small: the abort's reset net across the engine, then across the grouper, was the whole
top's worst path.

A copy (`copy_of`) is a register that synthesis keeps even though another has the same input:
Yosys's opt_merge merges identical flip-flops unless both carry `keep`, and the synthesis
scripts give it to every flip-flop driving a wire marked `obscura_copy`
(`KEEP_COPIES` in bitstreams/ulx3s-85f/build.py). Copies let one register's loads, spread over
the chip, each have a driver placed beside them.
"""

from amaranth.hdl import Signal

__all__ = ["data_reg", "keep_reg", "copy_of", "KEEP_COPY"]

#: The wire attribute that marks a copy for the synthesis scripts.
KEEP_COPY = "obscura_copy"


def data_reg(*args, **kwargs):
    """A `Signal` with `reset_less=True`, named after the variable it is assigned to."""
    return Signal(*args, reset_less=True, src_loc_at=1, **kwargs)


def keep_reg(*args, **kwargs):
    """A `Signal` marked as a copy: synthesis keeps its flip-flops even where another
    register has the same input."""
    return Signal(*args, attrs={KEEP_COPY: 1}, src_loc_at=1, **kwargs)


def copy_of(sig, name):
    """A register like `sig` (shape, reset) that synthesis keeps as flip-flops of its own;
    load it with the same statements as `sig`."""
    return Signal.like(sig, name=name, attrs={KEEP_COPY: 1}, src_loc_at=1)
