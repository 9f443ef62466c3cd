"""obscura: open FPGA video anonymizer (host library)."""

from .errors import ObscuraError, ToolchainError

__version__ = "0.1.0"
__all__ = ["ObscuraError", "ToolchainError", "__version__"]
