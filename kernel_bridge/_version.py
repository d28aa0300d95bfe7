"""The package version, read by hatch and reported in kernel_info."""

__version__ = "0.1.0"
