"""Integer datatypes of dataflow streams: signed/unsigned k-bit integers and bipolar {-1, +1}."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IntType:
    """A k-bit integer type; bipolar values are {-1, +1} carried in one bit (0 encodes -1)."""

    bits: int
    signed: bool
    bipolar: bool = False

    @property
    def min(self) -> int:
        if self.bipolar:
            return -1
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        if self.bipolar:
            return 1
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def name(self) -> str:
        if self.bipolar:
            return "BIPOLAR"
        return f"{'INT' if self.signed else 'UINT'}{self.bits}"

    @property
    def kind_code(self) -> int:
        """The kernel libraries' element kind: 0 unsigned, 1 signed, 2 bipolar."""
        return 2 if self.bipolar else (1 if self.signed else 0)

    def contains(self, values: np.ndarray) -> bool:
        values = np.asarray(values)
        if self.bipolar:
            return bool(np.isin(values, (-1, 1)).all())
        return bool(values.size == 0 or (values.min() >= self.min and values.max() <= self.max))

    @staticmethod
    def parse(name: str) -> IntType:
        if name == "BIPOLAR":
            return BIPOLAR
        if name.startswith("UINT"):
            return IntType(int(name[4:]), False)
        if name.startswith("INT"):
            return IntType(int(name[3:]), True)
        raise ValueError(f"unknown integer datatype '{name}'")


BIPOLAR = IntType(1, True, bipolar=True)


def smallest_type(lo: int, hi: int) -> IntType:
    """The narrowest integer type that holds every value in [lo, hi]."""
    lo, hi = int(lo), int(hi)
    if lo >= 0:
        return IntType(max(1, hi.bit_length()), False)
    bits = max((-lo - 1).bit_length(), hi.bit_length()) + 1
    return IntType(bits, True)


def quant_type(bits: int, signed: bool, narrow: bool) -> tuple[IntType, int, int]:
    """The datatype and the [qmin, qmax] range of a QONNX Quant node's integer output."""
    if signed:
        qmin, qmax = -(1 << (bits - 1)) + (1 if narrow else 0), (1 << (bits - 1)) - 1
    else:
        qmin, qmax = 0, (1 << bits) - 1 - (1 if narrow else 0)
    return IntType(bits, signed), qmin, qmax
