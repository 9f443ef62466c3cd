"""One exception hierarchy; every message says what to do next."""

__all__ = ["ObscuraError", "ToolchainError", "InputError", "TruncatedVideoError"]


class ObscuraError(Exception):
    """Base of every error obscura raises on purpose."""


class ToolchainError(ObscuraError):
    """A tool the requested operation needs (Verilator, a C++ compiler, Yosys) is missing or
    failed."""


class InputError(ObscuraError, ValueError):
    """An input (image, video, setting) cannot be used as given."""


class TruncatedVideoError(InputError):
    """A video broke off or held corrupt data after some frames: those frames were anonymized
    and written (`output`, `frames`); the rest could not be read."""

    def __init__(self, message, output, frames):
        super().__init__(message)
        self.output, self.frames = output, frames
