"""edge: quantized neural networks from Brevitas QAT to FPGA dataflow accelerators and edge devices."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edge-toolchain")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+src"
