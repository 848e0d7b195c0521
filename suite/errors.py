"""Typed errors. Each says which input (file, key, value) is wrong and what is allowed."""


class DsabenchError(Exception):
    """Base of every error this package raises on purpose."""


class InputError(DsabenchError):
    """Bad user input: scenario file, CLI flag, results file or trace. CLI exit code 2."""


class InvalidCase(DsabenchError):
    """A case that cannot run as specified (e.g. a view of a cache with more than one head)."""


class CaptureFailed(DsabenchError):
    """CUDA Graph capture failed; the message is the framework's own error text."""


class Unsupported(DsabenchError):
    """The case needs something this machine or backend lacks (e.g. CUDA Graph on CPU)."""
