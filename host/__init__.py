"""obscura: open FPGA video anonymizer (host library)."""

from .accelerator import Accelerator, BackendError, open
from .errors import InputError, ObscuraError, ToolchainError

__version__ = "0.1.0"
__all__ = ["open", "Accelerator", "ObscuraError", "ToolchainError", "InputError",
           "BackendError", "__version__"]
