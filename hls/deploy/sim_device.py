#!/usr/bin/env python3
"""Run a deploy package's PYNQ driver unchanged on a simulated board.

The real `pynq` package does the driver's work (MMIO, pynq.allocate, the AXI DMA driver pynq.lib.dma.DMA, DefaultIP
for the accelerator's control registers); only the device underneath is simulated: `SimBoard` is a pynq Device with
register read/write access, whose AXI DMA and accelerator registers behave as the hardware's do, and whose DMA
moves the buffers' bytes through edge's cycle-level simulator of the accelerator (raw AXI words in and out, TLAST
ends the S2MM transfer). Needs numpy and pynq only (it runs in the board's environment, not edge's).

    python sim_device.py DEPLOY_DIR SIM_BINARY WORK_DIR STATS_JSON -- DRIVER_ARGS...
"""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
from pynq import DefaultIP, allocate
from pynq.buffer import PynqBuffer
from pynq.lib.dma import DMA
from pynq.pl_server.device import Device

MM2S, S2MM = 0x00, 0x30  # channel register blocks of the AXI DMA (PG021)
DMACR, DMASR, ADDR, ADDR_MSB, LENGTH = 0x00, 0x04, 0x18, 0x1C, 0x28
SR_HALTED, SR_IDLE, SR_INTERNAL_ERROR = 0x1, 0x2, 0x10
AP_START, AP_DONE, AP_IDLE = 0x1, 0x2, 0x4
MAX_POLLS = 100_000  # a status register read this often without change: the transfer would hang on a board


class SimMemory:
    """Physically contiguous memory as pynq.allocate hands it out: numpy buffers at distinct physical addresses."""

    def __init__(self, device: SimBoard) -> None:
        self.device = device
        self.next_address = 0x1000_0000
        self.buffers: list[tuple[int, int, weakref.ref]] = []

    def allocate(self, shape, dtype, **kwargs) -> PynqBuffer:
        buf = PynqBuffer(shape, dtype, device=self.device, device_address=self.next_address, coherent=False)
        self.buffers.append((self.next_address, buf.nbytes, weakref.ref(buf)))
        self.next_address += (buf.nbytes + 4095) // 4096 * 4096
        return buf

    def view(self, address: int, nbytes: int) -> np.ndarray:
        """The bytes at a physical address, as the DMA reads or writes them."""
        for base, size, ref in self.buffers:
            buf = ref()
            if buf is not None and base <= address and address + nbytes <= base + size:
                return buf.reshape(-1).view(np.uint8)[address - base:address - base + nbytes]
        raise RuntimeError(f"simulated DMA: no allocated buffer holds 0x{address:x} +{nbytes} bytes (decode error)")


class SimBoard(Device):
    """A PYNQ device with REGISTER_RW access: the AXI DMA's and the accelerator's registers, backed by the
    cycle-level simulator."""

    def __init__(self, settings: dict, sim_binary: Path, work: Path) -> None:
        super().__init__("edge-sim")
        self.capabilities = {"REGISTER_RW": True}
        self.default_memory = SimMemory(self)
        self.settings, self.sim_binary, self.work = settings, sim_binary, work
        self.dma_base = settings["dma"]["base"]
        self.accel_base = settings["accelerator"]["base"]
        self.regs: dict[int, int] = {}
        self.frames_reg = self.accel_base + settings["accelerator"]["registers"]["frames"]
        self.ctrl_reg = self.accel_base + settings["accelerator"]["registers"]["ctrl"]
        self.regs[self.ctrl_reg] = AP_IDLE
        for ch in (MM2S, S2MM):
            self.regs[self.dma_base + ch + DMASR] = SR_HALTED | SR_IDLE
        self.armed = {MM2S: False, S2MM: False}
        self.polls = 0
        self.runs: list[dict] = []
        self.flushes = self.invalidates = 0

    # pynq.PynqBuffer calls these around DMA transfers (cache maintenance on a board)
    def flush(self, bo, offset, vaddr, nbytes) -> None:
        self.flushes += 1

    def invalidate(self, bo, offset, vaddr, nbytes) -> None:
        self.invalidates += 1

    def read_registers(self, address: int, length: int) -> bytes:
        value = self.regs.get(address, 0)
        if address in (self.dma_base + MM2S + DMASR, self.dma_base + S2MM + DMASR, self.ctrl_reg):
            self.polls += 1
            if self.polls > MAX_POLLS:
                raise RuntimeError(self._stuck())
        if address == self.ctrl_reg:
            self.regs[address] = value & ~AP_DONE  # ap_done clears on read
        return struct.pack("<I", value & 0xFFFF_FFFF)[:length]

    def write_registers(self, address: int, data: bytes) -> None:
        value = struct.unpack("<I", data.ljust(4, b"\0")[:4])[0]
        self.regs[address] = value
        self.polls = 0
        off = address - self.dma_base
        if off in (MM2S + DMACR, S2MM + DMACR):
            ch = off - DMACR
            sr = self.dma_base + ch + DMASR
            self.regs[sr] = (self.regs[sr] & ~SR_HALTED) if value & 1 else (self.regs[sr] | SR_HALTED)
        elif off in (MM2S + LENGTH, S2MM + LENGTH):
            ch = off - LENGTH
            if self.regs.get(self.dma_base + ch + DMACR, 0) & 1 == 0:
                raise RuntimeError("simulated DMA: transfer started on a halted channel")
            self.armed[ch] = True
            self.regs[self.dma_base + ch + DMASR] &= ~SR_IDLE
            self._maybe_run()
        elif address == self.ctrl_reg and value & AP_START:
            self.regs[address] = AP_START  # running: not idle, not done
            self._maybe_run()

    def _maybe_run(self) -> None:
        """The accelerator runs once it is started and both DMA channels have their transfers."""
        if not (self.armed[MM2S] and self.armed[S2MM] and self.regs[self.ctrl_reg] & AP_START):
            return
        reg = lambda ch, r: self.regs.get(self.dma_base + ch + r, 0)  # noqa: E731
        src = reg(MM2S, ADDR) | reg(MM2S, ADDR_MSB) << 32
        dst = reg(S2MM, ADDR) | reg(S2MM, ADDR_MSB) << 32
        n_in, n_out = reg(MM2S, LENGTH), reg(S2MM, LENGTH)
        frames = self.regs.get(self.frames_reg, 0)
        beat = self.settings["axi_bits"] // 8
        words_in = frames * self.settings["input"]["words_per_frame"]
        if n_in != words_in * beat:
            raise RuntimeError(f"simulated accelerator: frames register {frames} needs {words_in * beat} input bytes, "
                               f"the DMA sends {n_in}: the accelerator would stall")
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "input_beats.bin").write_bytes(self.default_memory.view(src, n_in).tobytes())
        result = subprocess.run([str(self.sim_binary), str(self.work)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"cycle-level simulator failed: {result.stdout.strip()} {result.stderr.strip()}")
        stats = json.loads((self.work / "sim_stats.json").read_text())
        produced = (self.work / "output_beats.bin").read_bytes()
        upto = (stats["tlast_word"] + 1) * beat  # S2MM ends the transfer at TLAST
        produced = produced[:upto]
        if len(produced) > n_out:  # no TLAST within the buffer: the DMA stops with an internal error
            self.regs[self.dma_base + S2MM + DMASR] |= SR_INTERNAL_ERROR
            produced = produced[:n_out]
        self.default_memory.view(dst, len(produced))[:] = np.frombuffer(produced, np.uint8)
        self.regs[self.dma_base + S2MM + LENGTH] = len(produced)  # bytes received, as the DMA reports them
        for ch in (MM2S, S2MM):
            self.regs[self.dma_base + ch + DMASR] |= SR_IDLE
            self.armed[ch] = False
        self.regs[self.ctrl_reg] = AP_DONE | AP_IDLE
        self.runs.append({"frames": frames, "cycles": stats["cycles"], "deadlock": stats["deadlock"],
                          "frame_done": stats["frame_done"]})

    def _stuck(self) -> str:
        missing = [name for name, ok in (("MM2S transfer", self.armed[MM2S]), ("S2MM transfer", self.armed[S2MM]),
                                         ("ap_start", self.regs[self.ctrl_reg] & AP_START)) if not ok]
        return f"simulated board: the driver waits for a transfer that never completes (missing: {', '.join(missing)})"


def open_sim(board: SimBoard):
    """The driver's open_device for the simulated board: the same pynq classes an Overlay would bind."""

    def open_device(bitfile: str, settings: dict):
        dma_cfg, acc_cfg = settings["dma"], settings["accelerator"]
        bits = str(dma_cfg["data_bits"])
        dma = DMA({"phys_addr": dma_cfg["base"], "addr_range": dma_cfg["range"], "device": board, "interrupts": {},
                   "parameters": {"c_include_sg": "0", "c_micro_dma": "0",
                                  "c_sg_length_width": str(dma_cfg["length_width"]),
                                  "c_include_mm2s": "1", "c_include_s2mm": "1",
                                  "c_include_mm2s_dre": "0", "c_include_s2mm_dre": "0",
                                  "c_m_axi_mm2s_data_width": bits, "c_m_axi_s2mm_data_width": bits}})
        control = DefaultIP({"phys_addr": acc_cfg["base"], "addr_range": acc_cfg["range"], "device": board})
        return driver.Accelerator(control, dma, settings, allocate)

    return open_device


if __name__ == "__main__":
    deploy, sim_binary, work, stats_path = (Path(a) for a in sys.argv[1:5])
    driver_args = sys.argv[6:] if len(sys.argv) > 5 and sys.argv[5] == "--" else sys.argv[5:]
    spec = importlib.util.spec_from_file_location("edge_driver", deploy / "driver" / "driver.py")
    driver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(driver)
    settings, _ = driver.load_settings(deploy / "driver")
    board = SimBoard(settings, sim_binary, work)
    Device.active_device = board  # pynq.allocate and MMIO default to it, as to the board's PL on a PYNQ image
    code = driver.main(driver_args, open_device=open_sim(board))
    stats_path.write_text(json.dumps({"runs": board.runs, "cycles": sum(r["cycles"] for r in board.runs),
                                      "frames": sum(r["frames"] for r in board.runs),
                                      "clock_mhz": settings["clock_mhz"], "cache_flushes": board.flushes,
                                      "cache_invalidates": board.invalidates}))
    sys.exit(code)
