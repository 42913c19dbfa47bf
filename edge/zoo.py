"""Brevitas model zoo, parameterised by weight and activation bit width (1 = bipolar/binary).

Shapes follow FINN's reference networks (TFC/SFC/LFC MLPs, CNV) scaled to the dataset's input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import brevitas.nn as qnn
import torch
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFloat,
)
from torch import nn

from frontend.errors import EdgeError

INPUT_BITS = 8
ATTENTION_BITS = 8  # Q, K, V, scores, attention weights and LayerNorm outputs of the transformer
MIN_BITS, MAX_BITS = 1, 8
POOLED_MIN_BITS = 4
FLOAT = 0  # bit width that builds the float baseline of the same architecture (float weights, ReLU)


def _check_bits(wbits: int, abits: int) -> None:
    for name, bits in (("wbits", wbits), ("abits", abits)):
        if not MIN_BITS <= bits <= MAX_BITS:
            raise EdgeError(f"--{name} must be between {MIN_BITS} and {MAX_BITS}, got {bits}")


def weight_quant(bits: int) -> dict:
    """Binary (+-1, scale 1) weights at 1 bit; narrow-range per-output-channel integers above."""
    if bits == FLOAT:
        return {"weight_quant": None}
    if bits == 1:
        return {"weight_quant": SignedBinaryWeightPerTensorConst}
    return {"weight_quant": Int8WeightPerChannelFloat, "weight_bit_width": bits}


def activation(bits: int) -> nn.Module:
    """Bipolar sign activation at 1 bit; an unsigned quantised ReLU above."""
    if bits == FLOAT:
        return nn.ReLU()
    if bits == 1:
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
    return qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True)


def signed_requant(bits: int) -> nn.Module:
    """A signed quantiser, shared by both inputs of a residual add so they have one scale."""
    if bits == FLOAT:
        return nn.Identity()
    if bits == 1:
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True)


def input_quant(bits: int = INPUT_BITS) -> nn.Module:
    """8-bit unsigned input quantiser: the FPGA driver runs it on the host before streaming pixels in."""
    if bits == FLOAT:
        return nn.Identity()
    return qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=INPUT_BITS, return_quant_tensor=True)


def _in_bits(wbits: int) -> int:
    return FLOAT if wbits == FLOAT else INPUT_BITS


def _attn_bits(abits: int) -> int:
    return FLOAT if abits == FLOAT else ATTENTION_BITS


def qlinear(cin: int, cout: int, bits: int, bias: bool = False) -> nn.Module:
    return qnn.QuantLinear(cin, cout, bias=bias, **weight_quant(bits))


def qconv(cin: int, cout: int, bits: int, kernel: int = 3, padding: int = 1, groups: int = 1) -> nn.Module:
    return qnn.QuantConv2d(cin, cout, kernel, padding=padding, groups=groups, bias=False, **weight_quant(bits))


class Sequential(nn.Module):
    """A zoo model whose layers run in order in `self.body` (residual blocks are single modules inside it)."""

    body: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class QuantMLP(Sequential):
    """FINN's fully connected networks: (Linear -> BatchNorm -> act) per hidden layer, then a Linear head."""

    def __init__(self, in_features: int, hidden: list[int], num_classes: int, wbits: int, abits: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [input_quant(_in_bits(wbits))]
        width = in_features
        for h in hidden:
            layers += [qlinear(width, h, wbits), nn.BatchNorm1d(h), activation(abits)]
            width = h
        layers.append(qlinear(width, num_classes, wbits, bias=True))
        self.body = nn.Sequential(*layers)


class QuantCNV(Sequential):
    """FINN's CNV: blocks of two 3x3 convs and a 2x2 max-pool, then fully connected layers.

    The zoo pads the convs so that 8x8 digits keep their size until each pool; `finn_cnv` builds FINN's exact
    32x32 network (no padding, no pool after the last block, FC 512-512).
    """

    def __init__(self, in_ch: int, side: int, num_classes: int, wbits: int, abits: int,
                 widths: tuple[int, ...] = (16, 32), fc: tuple[int, ...] = (64,), padding: int = 1,
                 pools: tuple[bool, ...] | None = None) -> None:
        super().__init__()
        pools = pools if pools is not None else (True,) * len(widths)
        layers: list[nn.Module] = [input_quant(_in_bits(wbits))]
        ch = in_ch
        for w, pool in zip(widths, pools, strict=True):
            for _ in range(2):
                layers += [qconv(ch, w, wbits, padding=padding), nn.BatchNorm2d(w), activation(abits)]
                ch = w
                side = side + 2 * padding - 2
            if pool:
                layers.append(nn.MaxPool2d(2))
                side //= 2
        layers.append(nn.Flatten())
        width = ch * side * side
        for f in fc:
            layers += [qlinear(width, f, wbits), nn.BatchNorm1d(f), activation(abits)]
            width = f
        layers.append(qlinear(width, num_classes, wbits, bias=True))
        self.body = nn.Sequential(*layers)


def finn_cnv(wbits: int, abits: int, num_classes: int = 10) -> nn.Module:
    """FINN's CNV for 32x32x3 (CIFAR-10): 64,64,pool,128,128,pool,256,256 (3x3, unpadded), FC 512,512,10."""
    _check_bits(wbits, abits)
    return QuantCNV(3, 32, num_classes, wbits, abits, widths=(64, 128, 256), fc=(512, 512), padding=0,
                    pools=(True, True, False))


def finn_mlp(hidden: int, wbits: int, abits: int, in_features: int = 784, num_classes: int = 10) -> nn.Module:
    """FINN's TFC/SFC/LFC for 28x28 MNIST: three hidden layers of 64, 256 or 1024."""
    _check_bits(wbits, abits)
    return QuantMLP(in_features, [hidden] * 3, num_classes, wbits, abits)


class QuantDWS(Sequential):
    """A MobileNet-style CNN: a stem conv, depthwise-separable blocks with pooling, global average pool, FC."""

    def __init__(self, in_ch: int, side: int, num_classes: int, wbits: int, abits: int,
                 widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        stem = widths[0]
        layers: list[nn.Module] = [
            input_quant(_in_bits(wbits)), qconv(in_ch, stem, wbits), nn.BatchNorm2d(stem), activation(abits),
        ]
        ch = stem
        for i, w in enumerate(widths[1:]):
            layers += [
                qconv(ch, ch, wbits, groups=ch), nn.BatchNorm2d(ch), activation(abits),  # depthwise 3x3
                qconv(ch, w, wbits, kernel=1, padding=0), nn.BatchNorm2d(w), activation(abits),  # pointwise
            ]
            ch = w
            if i < len(widths) - 2:
                layers.append(nn.MaxPool2d(2))
        # The pooled features feed the classifier directly; at 1-2 bits they lose most of the signal.
        pooled_bits = abits if abits == FLOAT else max(abits, POOLED_MIN_BITS)
        layers += [nn.AdaptiveAvgPool2d(1), activation(pooled_bits), nn.Flatten()]
        layers.append(qlinear(ch, num_classes, wbits, bias=True))
        self.body = nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """conv-BN-act-conv-BN plus the identity, both quantised by one shared quantiser before the add."""

    def __init__(self, ch: int, wbits: int, abits: int) -> None:
        super().__init__()
        self.conv1, self.bn1, self.act1 = qconv(ch, ch, wbits), nn.BatchNorm2d(ch), activation(abits)
        self.conv2, self.bn2 = qconv(ch, ch, wbits), nn.BatchNorm2d(ch)
        self.add_quant = signed_requant(abits)
        self.act_out = activation(abits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act_out(self.add_quant(y) + self.add_quant(x))


class QuantResNet(Sequential):
    """A small residual CNN: stem conv, a residual block per stage with max-pool between, FC head."""

    def __init__(self, in_ch: int, side: int, num_classes: int, wbits: int, abits: int,
                 widths: tuple[int, ...] = (16, 32)) -> None:
        super().__init__()
        layers: list[nn.Module] = [input_quant(_in_bits(wbits))]
        ch = in_ch
        for w in widths:
            layers += [qconv(ch, w, wbits), nn.BatchNorm2d(w), activation(abits), ResidualBlock(w, wbits, abits)]
            layers.append(nn.MaxPool2d(2))
            side //= 2
            ch = w
        layers.append(nn.Flatten())
        layers.append(qlinear(ch * side * side, num_classes, wbits, bias=True))
        self.body = nn.Sequential(*layers)


class TokenAttention(nn.Module):
    """Multi-head self-attention on (batch, tokens, dim) written with Brevitas layers and ordinary tensor ops.

    Q, K and V are 8-bit signed, the scaled scores are requantised to 8 bits before Softmax (so the hardware's
    exp table has 256 entries) and the attention weights to 8 unsigned bits."""

    def __init__(self, dim: int, heads: int, wbits: int, abits: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v = (qlinear(dim, dim, wbits, bias=True) for _ in range(3))
        self.q_quant, self.k_quant, self.v_quant = (signed_requant(_attn_bits(abits)) for _ in range(3))
        self.score_quant = signed_requant(_attn_bits(abits))
        self.weight_quant = (nn.Identity() if abits == FLOAT else qnn.QuantIdentity(
            act_quant=Uint8ActPerTensorFloat, bit_width=ATTENTION_BITS, return_quant_tensor=True))
        self.out_quant = signed_requant(_attn_bits(abits))
        self.proj = qlinear(dim, dim, wbits, bias=True)
        self.scale = 1.0 / math.sqrt(self.head_dim)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        t = t.value if hasattr(t, "value") else t
        return t.reshape(-1, t.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.shape[1]
        q = self._heads(self.q_quant(self.q(x)))
        k = self._heads(self.k_quant(self.k(x)))
        v = self._heads(self.v_quant(self.v(x)))
        scores = self.score_quant(torch.matmul(q, k.transpose(-2, -1)) * self.scale)
        scores = scores.value if hasattr(scores, "value") else scores
        weights = self.weight_quant(torch.softmax(scores, dim=-1))
        weights = weights.value if hasattr(weights, "value") else weights
        out = torch.matmul(weights, v).transpose(1, 2).reshape(-1, tokens, self.heads * self.head_dim)
        return self.proj(self.out_quant(out))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x)); both addends share one quantiser."""

    def __init__(self, dim: int, heads: int, hidden: int, wbits: int, abits: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ln1_quant, self.ln2_quant = signed_requant(_attn_bits(abits)), signed_requant(_attn_bits(abits))
        self.attn = TokenAttention(dim, heads, wbits, abits)
        self.fc1, self.act, self.fc2 = qlinear(dim, hidden, wbits, bias=True), activation(abits), qlinear(
            hidden, dim, wbits, bias=True)
        self.res1, self.res2 = signed_requant(_attn_bits(abits)), signed_requant(_attn_bits(abits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res1(x) + self.res1(self.attn(self.ln1_quant(self.ln1(x))))
        return self.res2(x) + self.res2(self.fc2(self.act(self.fc1(self.ln2_quant(self.ln2(x))))))


class QuantViT(nn.Module):
    """A small vision transformer: patch-embedding conv (patches overlapping by `overlap` pixels on each side),
    learned position embedding, pre-norm encoder blocks, final LayerNorm, mean over tokens, linear head. Attention
    and LayerNorm outputs are 8-bit."""

    def __init__(self, in_ch: int, side: int, num_classes: int, wbits: int, abits: int, patch: int = 2,
                 dim: int = 32, heads: int = 2, hidden: int = 64, depth: int = 2, overlap: int = 1) -> None:
        super().__init__()
        tokens = (side // patch) ** 2
        self.inp = input_quant(_in_bits(wbits))
        self.embed = qnn.QuantConv2d(in_ch, dim, patch + 2 * overlap, stride=patch, padding=overlap, bias=True,
                                     **weight_quant(wbits))
        self.embed_quant = signed_requant(_attn_bits(abits))
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.1)
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads, hidden, wbits, abits) for _ in range(depth)))
        self.ln = nn.LayerNorm(dim)
        self.ln_quant = signed_requant(_attn_bits(abits))
        self.pool_quant = signed_requant(_attn_bits(abits))
        self.head = qlinear(dim, num_classes, wbits, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(self.inp(x))
        t = t.value if hasattr(t, "value") else t
        t = t.flatten(2).transpose(1, 2)
        x = self.embed_quant(t) + self.embed_quant(self.pos)
        x = self.ln_quant(self.ln(self.blocks(x)))
        x = x.value if hasattr(x, "value") else x
        return self.head(self.pool_quant(x.mean(dim=1)))


@dataclass(frozen=True)
class ZooEntry:
    """How to build one zoo model for an input shape (C, H, W) and a class count."""

    name: str
    description: str
    flat_input: bool
    build: Callable[[tuple[int, int, int], int, int, int], nn.Module]
    lr: float = 0.01  # Adam learning rate `edge train` uses unless --lr is given
    min_bits: int = MIN_BITS  # narrowest weights/activations the architecture is built for


def _mlp(hidden: list[int]) -> Callable[[tuple[int, int, int], int, int, int], nn.Module]:
    return lambda shape, k, wb, ab: QuantMLP(shape[0] * shape[1] * shape[2], hidden, k, wb, ab)


def _square(kind: type[nn.Module]) -> Callable[[tuple[int, int, int], int, int, int], nn.Module]:
    def build(shape: tuple[int, int, int], k: int, wb: int, ab: int) -> nn.Module:
        c, h, w = shape
        if h != w or h < 4 or h % 4:
            raise EdgeError(f"this CNN needs square images with a side divisible by 4, got {h}x{w}")
        return kind(c, h, k, wb, ab)

    return build


ZOO: dict[str, ZooEntry] = {
    "tfc": ZooEntry("tfc", "MLP, 3 hidden layers of 64 (FINN TFC)", True, _mlp([64, 64, 64])),
    "sfc": ZooEntry("sfc", "MLP, 3 hidden layers of 256 (FINN SFC)", True, _mlp([256, 256, 256])),
    "lfc": ZooEntry("lfc", "MLP, 3 hidden layers of 1024 (FINN LFC)", True, _mlp([1024, 1024, 1024])),
    "cnv": ZooEntry("cnv", "conv-conv-pool blocks + FC (FINN CNV)", False, _square(QuantCNV)),
    "dws": ZooEntry("dws", "depthwise-separable CNN with global average pool (MobileNet-style)", False,
                    _square(QuantDWS)),
    "vit": ZooEntry("vit", "vision transformer: 16 overlapping patches as tokens, 2 blocks of 2-head attention", False,
                    _square(QuantViT), lr=0.003, min_bits=2),
    "resnet": ZooEntry("resnet", "residual CNN, one residual block per stage", False, _square(QuantResNet)),
}


def build_model(name: str, image_shape: tuple[int, int, int], num_classes: int, wbits: int, abits: int) -> nn.Module:
    """Instantiate a zoo model for a dataset's image shape and class count."""
    if name not in ZOO:
        raise EdgeError(f"unknown model '{name}'; the zoo has {', '.join(ZOO)}")
    check_model_bits(name, wbits, abits)
    return ZOO[name].build(image_shape, num_classes, wbits, abits)


def check_model_bits(name: str, wbits: int, abits: int) -> None:
    """The widths are in range, and the zoo model is built for them."""
    _check_bits(wbits, abits)
    if name in ZOO and min(wbits, abits) < ZOO[name].min_bits:
        raise EdgeError(f"--model {name} needs --wbits and --abits of at least {ZOO[name].min_bits} (binary "
                        "transformers are not supported: their top-1 does not survive the 1-level Softmax/LayerNorm "
                        "bound)")


def build_float_model(name: str, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The same architecture with float weights and ReLU activations: the accuracy baseline."""
    if name not in ZOO:
        raise EdgeError(f"unknown model '{name}'; the zoo has {', '.join(ZOO)}")
    return ZOO[name].build(image_shape, num_classes, FLOAT, FLOAT)


def model_input_shape(name: str, image_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """The per-sample input shape the model takes: flat features for MLPs, C,H,W for CNNs."""
    c, h, w = image_shape
    return (c * h * w,) if ZOO[name].flat_input else (c, h, w)
