"""Typed board profiles and the checks that turn a parsed YAML mapping into one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from frontend.errors import EdgeError

FPGA_KIND = "fpga"
EDGE_KIND = "edge"
EXPORT_TARGETS = ("onnx", "tflite", "openvino", "tensorrt")
RUNTIMES = ("litert", "openvino", "onnxruntime", "tensorrt")


class BoardSchemaError(EdgeError):
    """A board profile is missing a field or has a field of the wrong type or range."""


@dataclass(frozen=True)
class FpgaResources:
    """Programmable-logic resources of one FPGA part (BRAM counted in 36 Kb blocks)."""

    lut: int
    ff: int
    bram36: int
    uram: int
    dsp: int

    def as_dict(self) -> dict[str, int]:
        return {"lut": self.lut, "ff": self.ff, "bram36": self.bram36, "uram": self.uram, "dsp": self.dsp}


OPEN_FAMILIES = ("ecp5", "ice40", "gowin")  # families with an open flow: Yosys, nextpnr and the family's packer


@dataclass(frozen=True)
class OpenFlow:
    """How an open-toolchain board is built and reached: the nextpnr device, the pins of the clock and the UART
    the shell uses, the link's baud rate and the openFPGALoader board name."""

    device: str  # nextpnr: --85k / --up5k / the Gowin part number
    package: str
    gowin_family: str  # Gowin only: nextpnr's family=... and gowin_pack -d ...
    clock_pin: str
    uart_rx_pin: str  # the FPGA's receive pin (the host's TX)
    uart_tx_pin: str
    baud: int
    link: str  # what carries the UART to the host
    programmer: str
    oscillator_mhz: float = 0.0  # the clock on clock_pin (the profile's clock_mhz): the shell has no PLL


    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "package": self.package, "gowin_family": self.gowin_family,
                "pins": {"clk": self.clock_pin, "uart_rx": self.uart_rx_pin, "uart_tx": self.uart_tx_pin},
                "baud": self.baud, "link": self.link, "programmer": self.programmer}


@dataclass(frozen=True)
class FpgaBoard:
    """An FPGA board or card: its part, resources and the shell the accelerator sits in."""

    name: str
    description: str
    part: str
    family: str
    resources: FpgaResources
    clock_mhz: float
    shell: str
    pynq: bool
    source: str
    ddr_bandwidth_gbps: float | None = None
    open_flow: OpenFlow | None = None
    kind: str = FPGA_KIND

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    def summary(self) -> str:
        r = self.resources
        return f"{r.lut:,} LUT, {r.bram36:,} BRAM36, {r.uram:,} URAM, {r.dsp:,} DSP"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "part": self.part,
            "family": self.family,
            "resources": self.resources.as_dict(),
            "clock_mhz": self.clock_mhz,
            "shell": self.shell,
            "pynq": self.pynq,
            "ddr_bandwidth_gbps": self.ddr_bandwidth_gbps,
            "source": self.source,
            **({"open_flow": self.open_flow.as_dict()} if self.open_flow else {}),
        }


@dataclass(frozen=True)
class Accelerator:
    """An on-chip accelerator of an edge device (GPU, NPU, TPU) and the data types it runs."""

    name: str
    tops: float
    dtypes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tops": self.tops, "dtypes": list(self.dtypes)}


@dataclass(frozen=True)
class EdgeDevice:
    """An edge device: its CPU, its accelerators, the runtime to use and the default export target."""

    name: str
    description: str
    soc: str
    cpu_cores: int
    cpu_isa: str
    cpu_model: str
    cpu_clock_ghz: float
    runtime: str
    export_target: str
    source: str
    accelerators: tuple[Accelerator, ...] = field(default_factory=tuple)
    memory_gb: float | None = None
    kind: str = EDGE_KIND

    def summary(self) -> str:
        acc = ", ".join(f"{a.name} {a.tops:g} TOPS {'/'.join(a.dtypes)}" for a in self.accelerators)
        cpu = f"{self.cpu_cores}x {self.cpu_model} @ {self.cpu_clock_ghz:g} GHz"
        return f"{cpu}; {acc}" if acc else cpu

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "soc": self.soc,
            "cpu": {
                "cores": self.cpu_cores,
                "isa": self.cpu_isa,
                "model": self.cpu_model,
                "clock_ghz": self.cpu_clock_ghz,
            },
            "accelerators": [a.as_dict() for a in self.accelerators],
            "memory_gb": self.memory_gb,
            "runtime": self.runtime,
            "export_target": self.export_target,
            "source": self.source,
        }


Board = FpgaBoard | EdgeDevice


class _Fields:
    """Typed access to one mapping of a profile, with errors that name the file and the field."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise BoardSchemaError(f"{where}: expected a mapping, got {type(data).__name__}")
        self.data = data
        self.where = where

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise BoardSchemaError(f"{self.where}: missing field '{key}'")
            return None
        return self.data[key]

    def text(self, key: str, required: bool = True) -> str:
        value = self._get(key, required)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise BoardSchemaError(f"{self.where}: field '{key}' must be a non-empty string")
        return value.strip()

    def count(self, key: str) -> int:
        value = self._get(key, True)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BoardSchemaError(f"{self.where}: field '{key}' must be a whole number >= 0, got {value!r}")
        return value

    def number(self, key: str, required: bool = True) -> float | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise BoardSchemaError(f"{self.where}: field '{key}' must be a positive number, got {value!r}")
        return float(value)

    def flag(self, key: str) -> bool:
        value = self._get(key, True)
        if not isinstance(value, bool):
            raise BoardSchemaError(f"{self.where}: field '{key}' must be true or false, got {value!r}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in allowed:
            raise BoardSchemaError(f"{self.where}: field '{key}' is {value!r}; expected one of {', '.join(allowed)}")
        return value

    def sub(self, key: str) -> _Fields:
        return _Fields(self._get(key, True), f"{self.where}.{key}")

    def items(self, key: str) -> list[_Fields]:
        value = self._get(key, False) or []
        if not isinstance(value, list):
            raise BoardSchemaError(f"{self.where}: field '{key}' must be a list")
        return [_Fields(v, f"{self.where}.{key}[{i}]") for i, v in enumerate(value)]


def parse_board(data: Any, where: str) -> Board:
    """Validate a parsed YAML mapping and build the typed profile; `where` names the file in errors."""
    f = _Fields(data, where)
    kind = f.choice("kind", (FPGA_KIND, EDGE_KIND))
    if kind == FPGA_KIND:
        r = f.sub("resources")
        return FpgaBoard(
            name=f.text("name"),
            description=f.text("description"),
            part=f.text("part"),
            family=f.text("family"),
            resources=FpgaResources(
                lut=r.count("lut"), ff=r.count("ff"), bram36=r.count("bram36"), uram=r.count("uram"),
                dsp=r.count("dsp"),
            ),
            clock_mhz=f.number("clock_mhz") or 0.0,
            shell=f.text("shell"),
            pynq=f.flag("pynq"),
            ddr_bandwidth_gbps=f.number("ddr_bandwidth_gbps", required=False),
            source=f.text("source"),
            open_flow=_open_flow(f) if f.data.get("family") in OPEN_FAMILIES else None,
        )
    cpu = f.sub("cpu")
    accelerators = tuple(
        Accelerator(name=a.text("name"), tops=a.number("tops") or 0.0, dtypes=_dtypes(a))
        for a in f.items("accelerators")
    )
    return EdgeDevice(
        name=f.text("name"),
        description=f.text("description"),
        soc=f.text("soc"),
        cpu_cores=cpu.count("cores"),
        cpu_isa=cpu.text("isa"),
        cpu_model=cpu.text("model"),
        cpu_clock_ghz=cpu.number("clock_ghz") or 0.0,
        accelerators=accelerators,
        memory_gb=f.number("memory_gb", required=False),
        runtime=f.choice("runtime", RUNTIMES),
        export_target=f.choice("export_target", EXPORT_TARGETS),
        source=f.text("source"),
    )


def _open_flow(f: _Fields) -> OpenFlow:
    o = f.sub("open_flow")
    pins = o.sub("pins")
    return OpenFlow(device=o.text("device"), package=o.text("package", required=False),
                    gowin_family=o.text("gowin_family", required=False), clock_pin=pins.text("clk"),
                    uart_rx_pin=pins.text("uart_rx"), uart_tx_pin=pins.text("uart_tx"), baud=o.count("baud"),
                    link=o.text("link"), programmer=o.text("programmer"),
                    oscillator_mhz=f.number("clock_mhz") or 0.0)


def _dtypes(a: _Fields) -> tuple[str, ...]:
    value = a.data.get("dtypes")
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise BoardSchemaError(f"{a.where}: field 'dtypes' must be a non-empty list of names such as [int8, fp16]")
    return tuple(value)
