"""A CNN written as people write PyTorch (modules as attributes, `x.reshape(x.shape[0], -1)` to flatten), not from
the zoo: the benchmarks' "model we did not write", and usable as `edge compress --model bench/plain_cnn.py:build`."""

from __future__ import annotations

import brevitas.nn as qnn
import torch
from torch import nn

INPUT_SHAPE = (1, 8, 8)


class PlainNet(nn.Module):
    """Two 3x3 convs with BatchNorm, a max pool, two fully connected layers; w4a4, 8-bit input."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(1, 16, 3, padding=1, weight_bit_width=4, bias=False)
        self.b1 = nn.BatchNorm2d(16)
        self.r1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.c2 = qnn.QuantConv2d(16, 32, 3, padding=1, weight_bit_width=4, bias=False)
        self.b2 = nn.BatchNorm2d(32)
        self.r2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = qnn.QuantLinear(32 * 4 * 4, 64, weight_bit_width=4, bias=False)
        self.b3 = nn.BatchNorm1d(64)
        self.r3 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(64, 10, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.r1(self.b1(self.c1(self.inp(x))))
        x = self.pool(self.r2(self.b2(self.c2(x))))
        x = self.r3(self.b3(self.fc1(x.reshape(x.shape[0], -1))))
        return self.fc2(x)


def build() -> nn.Module:
    """The factory `edge compress --model bench/plain_cnn.py:build` calls."""
    torch.manual_seed(0)
    return PlainNet()
