"""One exception hierarchy; every message says what to do next."""

__all__ = ["ObscuraError", "ToolchainError", "InputError"]


class ObscuraError(Exception):
    """Base of every error obscura raises on purpose."""


class ToolchainError(ObscuraError):
    """A tool the requested operation needs (Verilator, a C++ compiler, Yosys) is missing or
    failed."""


class InputError(ObscuraError, ValueError):
    """An input (image, video, setting) cannot be used as given."""
