"""Verilator run of an open-FPGA build's board top (edge_board: the accelerator behind the UART shell) with the host's
serial line modelled bit by bit: frames go in as the driver sends them (words as little-endian bytes) and the
transmitted bytes come back as output words."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from boards.schema import FpgaBoard
from rtl.bitstream import BOARD_TOP, shell_params, write_board_sources
from rtl.project import Project
from rtl.verilator import VerilatorError, compile_design

UART_TB = Path(__file__).parent / "tb" / "uart_tb.cpp"
SERIAL_DIR = "serial_sim"  # inside the RTL project


@dataclass(frozen=True)
class SerialResult:
    outputs: np.ndarray  # (frames, output elements)
    cycles: int
    clks_per_bit: int


def words_to_bytes(words: list[int], width: int) -> bytes:
    """Stream words -> the UART's bytes: ceil(width / 8) bytes per word, least significant first."""
    n = (width + 7) // 8
    return b"".join(int(w).to_bytes(n, "little") for w in words)


def bytes_to_words(data: bytes, width: int) -> list[int]:
    n = (width + 7) // 8
    return [int.from_bytes(data[i:i + n], "little") for i in range(0, len(data) - n + 1, n)]


def compile_board(project: Project, board: FpgaBoard) -> Path:
    """The Verilator model of the board top (shell included), kept in the project."""
    work = project.directory / SERIAL_DIR
    sources = write_board_sources(project, board, work)
    return compile_design(BOARD_TOP, sources, work / "obj", testbench=UART_TB, prefix="Vboard")


def simulate_serial(project: Project, board: FpgaBoard, x_int: np.ndarray, timeout: float = 3600) -> SerialResult:
    """Send every frame of x_int (batch first, the IR's input integers) over the modelled UART at the board's bit
    time and return what the design transmits, unpacked."""
    exe = compile_board(project, board)
    frames = len(x_int)
    words = project.in_format.pack(np.asarray(x_int, np.int64).reshape(frames, -1))
    out_width = project.out_format.width
    n_out_bytes = frames * project.out_words * ((out_width + 7) // 8)
    cpb = shell_params(project, board)["CLKS_PER_BIT"]
    work = exe.parent.parent
    (work / "in.bin").write_bytes(words_to_bytes(words, project.in_format.width))
    in_frame = project.in_words * ((project.in_format.width + 7) // 8)
    out_frame = project.out_words * ((out_width + 7) // 8)
    # run where the ROM files are ($readmemh paths are relative to the project)
    done = subprocess.run([str(exe), f"{SERIAL_DIR}/in.bin", f"{SERIAL_DIR}/out.bin", str(n_out_bytes), str(cpb),
                           str(in_frame), str(out_frame)], capture_output=True, text=True, cwd=project.directory,
                          timeout=timeout)
    if done.returncode != 0:
        raise VerilatorError(f"serial simulation of {board.name}'s top failed: {(done.stderr or done.stdout).strip()}")
    out_words = bytes_to_words((work / "out.bin").read_bytes(), out_width)
    cycles = next(int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("cycles "))
    return SerialResult(project.out_format.unpack(out_words).reshape(frames, -1), cycles, cpb)
