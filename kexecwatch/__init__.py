"""kexecwatch: detect kernels loaded or unloaded with kexec, from the Linux audit trail."""

__version__ = "0.1.0"

__all__ = ["__version__"]
