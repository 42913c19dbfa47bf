"""Where ap_int.h and hls_stream.h come from: a Vitis install ($XILINX_HLS/include) or hls4ml's ap_types."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from frontend.errors import EdgeError

KERNEL_INCLUDE = Path(__file__).parent / "include"


def ap_types_dir() -> Path:
    """The directory holding ap_int.h and hls_stream.h for C-sim with g++."""
    vitis = os.environ.get("XILINX_HLS")
    if vitis:
        inc = Path(vitis) / "include"
        if (inc / "ap_int.h").is_file():
            return inc
        raise EdgeError(f"XILINX_HLS={vitis} has no include/ap_int.h; unset it to use hls4ml's ap_types")
    spec = importlib.util.find_spec("hls4ml")  # located, not imported: the package import is slow
    if spec is not None and spec.submodule_search_locations:
        inc = Path(spec.submodule_search_locations[0]) / "templates" / "vivado" / "ap_types"
        if (inc / "ap_int.h").is_file() and (inc / "hls_stream.h").is_file():
            return inc
    raise EdgeError("no ap_int.h/hls_stream.h found: `pip install hls4ml` (it ships Xilinx's open-source ap_types) "
                    "or set XILINX_HLS to a Vitis HLS install")
