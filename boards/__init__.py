"""Board registry shared by the FPGA and edge paths: one YAML profile per board, validated on load."""

from boards.registry import BoardNotFound, list_boards, load_board, load_board_file
from boards.schema import Accelerator, EdgeDevice, FpgaBoard, FpgaResources

__all__ = [
    "Accelerator",
    "BoardNotFound",
    "EdgeDevice",
    "FpgaBoard",
    "FpgaResources",
    "list_boards",
    "load_board",
    "load_board_file",
]
