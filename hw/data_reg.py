"""Data registers: flip-flops without a reset.

A block that is reset to abandon its work (the detector's engine and grouper, through a
`ResetInserter` on the abort) needs the reset only on its valid bits and control state; its
data registers are loaded before they are used. Leaving them without a reset keeps the reset's
fan-out small: the abort's reset net across the engine, then across the grouper, was the whole
top's worst path.
"""

from amaranth.hdl import Signal

__all__ = ["data_reg"]


def data_reg(*args, **kwargs):
    """A `Signal` with `reset_less=True`, named after the variable it is assigned to."""
    return Signal(*args, reset_less=True, src_loc_at=1, **kwargs)
