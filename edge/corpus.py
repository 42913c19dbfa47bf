"""Models nobody here designed, for tests and benchmarks: FINN's reference networks from brevitas_examples (shipped
in the brevitas wheel) and finn-examples' other architectures written from their published descriptions. Random
weights and randomised BatchNorm statistics, exported with brevitas' `export_qonnx` exactly as users do."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

BNN_PYNQ = ("tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "sfc_1w2a", "sfc_2w2a", "lfc_1w1a", "lfc_1w2a",
            "cnv_1w1a", "cnv_1w2a", "cnv_2w2a")


def randomise_batchnorm(model: nn.Module, seed: int = 1) -> None:
    """BatchNorm/TensorNorm statistics and affine parameters away from their identity defaults."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if getattr(mod, "running_mean", None) is not None:
                mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.5)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
                mod.weight.data.copy_(torch.randn(mod.weight.shape, generator=g))
                mod.bias.data.copy_(torch.randn(mod.bias.shape, generator=g) * 0.2)


def _export(model: nn.Module, shape: tuple[int, ...], path: Path, dynamo: bool = True) -> Path:
    from brevitas.export import export_qonnx

    model.eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # torch.onnx prints progress
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.rand(shape), str(path), **({} if dynamo else {"dynamo": False}))
    return path


def _seeded_export(make: Callable[[], nn.Module], shape: tuple[int, ...], path: Path) -> Path:
    """A model built under seed 0, with randomised BatchNorm statistics, exported to QONNX."""
    torch.manual_seed(0)
    model = make()
    randomise_batchnorm(model)
    return _export(model, shape, path)


def bnn_pynq(name: str, out: Path, dynamo: bool = True) -> Path:
    """brevitas_examples' bnn_pynq network `name` (tfc/sfc/lfc/cnv), exported with torch's default exporter or
    the TorchScript one (dynamo=False)."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(0)
    model, _ = model_with_cfg(name, pretrained=False)
    randomise_batchnorm(model)
    shape = (1, 3, 32, 32) if name.startswith("cnv") else (1, 1, 28, 28)
    return _export(model, shape, out / f"{name}{'' if dynamo else '_ts'}.onnx", dynamo)


def _mlp(features: int, hidden: tuple[int, ...], classes: int, wbits: int, abits: int,
         in_bits: int) -> nn.Module:
    import brevitas.nn as qnn

    layers: list[nn.Module] = [qnn.QuantIdentity(bit_width=in_bits, return_quant_tensor=True)]
    width = features
    for h in hidden:
        layers += [qnn.QuantLinear(width, h, bias=True, weight_bit_width=wbits), nn.BatchNorm1d(h),
                   nn.Dropout(0.1), qnn.QuantReLU(bit_width=abits, return_quant_tensor=True)]
        width = h
    layers.append(qnn.QuantLinear(width, classes, bias=True, weight_bit_width=wbits))
    return nn.Sequential(*layers)


def kws_mlp(out: Path) -> Path:
    """finn-examples' keyword-spotting MLP: 490 MFCC features (10 x 49), three hidden layers of 64, 12 classes,
    3-bit weights and activations, 8-bit input."""
    return _seeded_export(lambda: _mlp(490, (64, 64, 64), 12, 3, 3, 8), (1, 490), out / "kws_mlp_w3a3.onnx")


def unsw_mlp(out: Path) -> Path:
    """FINN's UNSW-NB15 intrusion-detection MLP: 600 binarised features -> 64 -> 64 -> 64 -> 1, w2a2."""
    return _seeded_export(lambda: _mlp(600, (64, 64, 64), 1, 2, 2, 2), (1, 600), out / "unsw_mlp_w2a2.onnx")


class RadioMlVgg10(nn.Module):
    """finn-examples' RadioML 2018 VGG10: 2 x 1024 I/Q samples, seven Conv1d(64, k=3, pad=1) + BatchNorm + ReLU
    + MaxPool1d(2) blocks, two dense layers of 128, 24 classes; w4a4, 8-bit input."""

    def __init__(self, channels: int = 64, length: int = 1024) -> None:
        import brevitas.nn as qnn

        super().__init__()
        layers: list[nn.Module] = [qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)]
        c_in = 2
        for _ in range(7):
            layers += [qnn.QuantConv1d(c_in, channels, 3, padding=1, bias=False, weight_bit_width=4),
                       nn.BatchNorm1d(channels), qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
                       nn.MaxPool1d(2)]
            c_in = channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            qnn.QuantLinear(channels * (length // 128), 128, bias=True, weight_bit_width=4), nn.BatchNorm1d(128),
            qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
            qnn.QuantLinear(128, 128, bias=True, weight_bit_width=4), nn.BatchNorm1d(128),
            qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
            qnn.QuantLinear(128, 24, bias=True, weight_bit_width=4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(x.reshape(x.shape[0], -1))


def radioml_vgg10(out: Path) -> Path:
    return _seeded_export(RadioMlVgg10, (1, 2, 1024), out / "radioml_vgg10_w4a4.onnx")


class TruncAvgPoolNet(nn.Module):
    """A small CNN that downsamples with brevitas' TruncAvgPool2d (AveragePool + Trunc in QONNX) on 8 x 8 digits."""

    def __init__(self) -> None:
        import brevitas.nn as qnn

        super().__init__()
        self.quant = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=4, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool = qnn.TruncAvgPool2d(kernel_size=2, stride=2, bit_width=4)
        self.fc = qnn.QuantLinear(8 * 4 * 4, 10, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn(self.conv(self.quant(x)))))
        return self.fc(x.reshape(x.shape[0], -1))


def trunc_avgpool(out: Path) -> Path:
    return _seeded_export(TruncAvgPoolNet, (1, 1, 8, 8), out / "trunc_avgpool.onnx")


class CeilPoolNet(nn.Module):
    """Odd feature maps pooled with MaxPool2d(2, ceil_mode=True) and a padded MaxPool2d(2, padding=1), flattened
    with x.view(x.size(0), -1)."""

    def __init__(self) -> None:
        import brevitas.nn as qnn

        super().__init__()
        self.quant = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 2, weight_bit_width=4, bias=False)  # 8x8 -> 7x7
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool1 = nn.MaxPool2d(2, ceil_mode=True)  # 7x7 -> 4x4
        self.conv2 = qnn.QuantConv2d(8, 8, 2, weight_bit_width=4, bias=False)  # 4x4 -> 3x3
        self.bn2 = nn.BatchNorm2d(8)
        self.relu2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool2 = nn.MaxPool2d(2, padding=1)  # 3x3 -> 2x2
        self.fc = qnn.QuantLinear(8 * 2 * 2, 10, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.bn1(self.conv1(self.quant(x)))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        return self.fc(x.view(x.size(0), -1))


def ceil_pool(out: Path) -> Path:
    return _seeded_export(CeilPoolNet, (1, 1, 8, 8), out / "ceil_pool.onnx")


class PerChannelActNet(nn.Module):
    """A per-channel activation quantiser (as MobileNet's brevitas_examples use) feeding a depthwise convolution,
    which keeps every channel's scale apart."""

    def __init__(self, channels: int = 8) -> None:
        import brevitas.nn as qnn

        super().__init__()
        self.quant = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, channels, 3, padding=1, weight_bit_width=4, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = qnn.QuantReLU(bit_width=4, return_quant_tensor=True, scaling_per_output_channel=True,
                                  per_channel_broadcastable_shape=(1, channels, 1, 1),
                                  scaling_stats_permute_dims=(1, 0, 2, 3))
        self.dw = qnn.QuantConv2d(channels, channels, 3, padding=1, groups=channels, weight_bit_width=4, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(channels * 8 * 8, 10, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.bn2(self.dw(self.relu(self.bn(self.conv(self.quant(x)))))))
        return self.fc(x.reshape(x.shape[0], -1))


def per_channel_act(out: Path) -> Path:
    torch.manual_seed(0)
    model = PerChannelActNet()
    randomise_batchnorm(model)
    model.train()  # the per-channel scales come from runtime statistics: let them see some data
    with torch.no_grad():
        for _ in range(40):
            model(torch.rand(8, 1, 8, 8))
    randomise_batchnorm(model)
    return _export(model, (1, 1, 8, 8), out / "per_channel_act.onnx")


class ConcatNet(nn.Module):
    """Two branches (3x3 and 1x1 convolutions) quantised by one shared QuantReLU and concatenated along channels,
    as in inception-style and DenseNet-style blocks."""

    def __init__(self) -> None:
        import brevitas.nn as qnn

        super().__init__()
        self.quant = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.stem = qnn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=4, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.relu0 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.a = qnn.QuantConv2d(8, 8, 3, padding=1, weight_bit_width=4, bias=False)
        self.bn_a = nn.BatchNorm2d(8)
        self.b = qnn.QuantConv2d(8, 4, 1, weight_bit_width=4, bias=False)
        self.bn_b = nn.BatchNorm2d(4)
        self.shared = qnn.QuantReLU(bit_width=4)
        self.pool = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(12 * 4 * 4, 10, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu0(self.bn0(self.stem(self.quant(x))))
        y = torch.cat([self.shared(self.bn_a(self.a(x))), self.shared(self.bn_b(self.b(x)))], dim=1)
        y = self.pool(y)
        return self.fc(y.reshape(y.shape[0], -1))


def concat(out: Path) -> Path:
    return _seeded_export(ConcatNet, (1, 1, 8, 8), out / "concat.onnx")


class AtrousNet(nn.Module):
    """DeepLab's atrous spatial pyramid: a stem, then 1x1, 3x3 dilation-2 and 3x3 dilation-4 branches (padding
    equal to the dilation, as DeepLab pads) under one shared QuantReLU, concatenated and mixed by a 1x1 conv."""

    def __init__(self) -> None:
        import brevitas.nn as qnn

        super().__init__()
        self.quant = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.stem = qnn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=4, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.relu0 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.branches = nn.ModuleList([
            qnn.QuantConv2d(8, 4, 1, weight_bit_width=4, bias=False),
            qnn.QuantConv2d(8, 4, 3, padding=2, dilation=2, weight_bit_width=4, bias=False),
            qnn.QuantConv2d(8, 4, 3, padding=4, dilation=4, weight_bit_width=4, bias=False)])
        self.bns = nn.ModuleList(nn.BatchNorm2d(4) for _ in range(3))
        self.shared = qnn.QuantReLU(bit_width=4)
        self.mix = qnn.QuantConv2d(12, 8, 1, weight_bit_width=4, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(8 * 6 * 6, 10, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu0(self.bn0(self.stem(self.quant(x))))
        y = torch.cat([self.shared(bn(conv(x))) for conv, bn in zip(self.branches, self.bns, strict=True)], dim=1)
        y = self.pool(self.relu1(self.bn1(self.mix(y))))
        return self.fc(y.reshape(y.shape[0], -1))


def atrous(out: Path) -> Path:
    return _seeded_export(AtrousNet, (1, 1, 12, 12), out / "atrous.onnx")


class StemPoolNet(nn.Module):
    """ResNet's stem pool, MaxPool2d(3, stride=2, padding=1), over overlapping windows of signed values (padding
    acts as -inf), then an overlapping stride-1 pool of unsigned ones."""

    def __init__(self) -> None:
        import brevitas.nn as qnn

        super().__init__()
        self.quant = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=4, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)  # signed: no ReLU
        self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)  # 8x8 -> 4x4
        self.conv2 = qnn.QuantConv2d(8, 8, 3, padding=1, weight_bit_width=4, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool2 = nn.MaxPool2d(3, stride=1, padding=1)  # 4x4 -> 4x4
        self.fc = qnn.QuantLinear(8 * 4 * 4, 10, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.bn1(self.conv1(self.quant(x)))))
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


def stem_pool(out: Path) -> Path:
    return _seeded_export(StemPoolNet, (1, 1, 8, 8), out / "stem_pool.onnx")


class SubPixelNet(nn.Module):
    """A tiny super-resolution network (ESPCN-style): two convolutions, an 8-bit quantised residual image of
    4 x 4 channels, PixelShuffle(2) to a 16x16 single-channel image (exported as DepthToSpace, mode CRD)."""

    def __init__(self) -> None:
        import brevitas.nn as qnn

        super().__init__()
        self.quant = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=4, bias=True)
        self.relu1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(8, 4, 3, padding=1, weight_bit_width=4, bias=True)
        self.out = qnn.QuantIdentity(bit_width=8, return_quant_tensor=False)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.out(self.conv2(self.relu1(self.conv1(self.quant(x))))))


def pixel_shuffle(out: Path) -> Path:
    return _seeded_export(SubPixelNet, (1, 1, 8, 8), out / "pixel_shuffle.onnx")


class TinyUNet(nn.Module):
    """A one-level UNet: encoder conv, max pool, bottleneck conv, nearest Upsample(2), Concat with the skip
    connection (both branches through one shared quantiser, as concatenated tensors need one scale), a 1x1 head
    to two classes per pixel (segmentation logits, unquantised)."""

    def __init__(self) -> None:
        import brevitas.nn as qnn

        super().__init__()
        self.quant = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.enc = qnn.QuantConv2d(1, 4, 3, padding=1, weight_bit_width=4, bias=False)
        self.bn_enc = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.mid = qnn.QuantConv2d(4, 4, 3, padding=1, weight_bit_width=4, bias=False)
        self.bn_mid = nn.BatchNorm2d(4)
        self.shared = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = qnn.QuantConv2d(8, 2, 1, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.shared(self.bn_enc(self.enc(self.quant(x))))
        deep = self.up(self.shared(self.bn_mid(self.mid(self.pool(skip)))))
        return self.head(torch.cat([skip, deep], dim=1))


def unet(out: Path) -> Path:
    return _seeded_export(TinyUNet, (1, 1, 8, 8), out / "unet.onnx")


class TransposedUpNet(nn.Module):
    """A segmentation decoder's learned upsampling: stride-2 conv down, Brevitas QuantConvTranspose2d up (2x2/2 by
    default; 4x4/2 padding 1 and 3x3/2 padding 1 output padding 1 overlap their windows), BatchNorm and a quantised
    ReLU after it, then a 1x1 head to two classes per pixel (logits, unquantised)."""

    def __init__(self, kernel: int = 2, padding: int = 0, output_padding: int = 0) -> None:
        import brevitas.nn as qnn

        super().__init__()
        self.quant = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.enc = qnn.QuantConv2d(1, 6, 3, stride=2, padding=1, weight_bit_width=4, bias=False)
        self.bn_enc = nn.BatchNorm2d(6)
        self.relu = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.up = qnn.QuantConvTranspose2d(6, 4, kernel, stride=2, padding=padding, output_padding=output_padding,
                                           weight_bit_width=4, bias=False)
        self.bn_up = nn.BatchNorm2d(4)
        self.relu_up = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.head = qnn.QuantConv2d(4, 2, 1, weight_bit_width=4, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn_enc(self.enc(self.quant(x))))
        return self.head(self.relu_up(self.bn_up(self.up(h))))


def conv_transpose(out: Path) -> Path:
    return _seeded_export(TransposedUpNet, (1, 1, 8, 8), out / "conv_transpose.onnx")


def conv_transpose_4x4(out: Path) -> Path:
    return _seeded_export(lambda: TransposedUpNet(4, 1), (1, 1, 8, 8), out / "conv_transpose_4x4.onnx")


def conv_transpose_3x3(out: Path) -> Path:
    return _seeded_export(lambda: TransposedUpNet(3, 1, 1), (1, 1, 8, 8), out / "conv_transpose_3x3.onnx")


class ActivationTablesNet(nn.Module):
    """A transformer-style MLP with the activations of the literature, each between two quantisers: GELU after
    an 8-bit signed quantiser (to 4 bits), then SiLU plus tanh of a 6-bit value (x * sigmoid(x) + tanh(x), the
    quantised tensor used three times), then a classifier. Each becomes one lookup table on the FPGA path."""

    def __init__(self) -> None:
        import brevitas.nn as qnn
        from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloat

        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(64, 32, bias=True, weight_bit_width=4)
        self.q1 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.gelu = nn.GELU()
        self.q2 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=4, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(32, 32, bias=True, weight_bit_width=4)
        self.q3 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=6, return_quant_tensor=True)
        self.q4 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.fc3 = qnn.QuantLinear(32, 10, bias=True, weight_bit_width=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.q1(self.fc1(self.inp(x)))
        h = self.q2(self.gelu(h.value))
        h = self.q3(self.fc2(h)).value
        return self.fc3(self.q4(h * torch.sigmoid(h) + torch.tanh(h)))


def activation_tables(out: Path) -> Path:
    """Exported after a calibration pass so that the activation scales are those of real data."""
    torch.manual_seed(0)
    model = ActivationTablesNet()
    with torch.no_grad():
        model(torch.rand(64, 64))
    return _export(model, (1, 64), out / "activation_tables.onnx", dynamo=False)


class MhaEncoder(nn.Module):
    """A transformer encoder block as users write it with Brevitas: QuantMultiheadAttention (batch_first, packed
    in-projection, softmax input quantised to 8 bits, 2 heads), the residual through one shared quantiser,
    LayerNorm, mean over the tokens, a classifier. Inputs: 8 tokens of 32 features."""

    def __init__(self, dim: int = 32, heads: int = 2) -> None:
        import brevitas.nn as qnn
        from brevitas.quant import Int8ActPerTensorFloat

        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.attn = qnn.QuantMultiheadAttention(dim, heads, batch_first=True, softmax_input_quant=Int8ActPerTensorFloat)
        self.res = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.ln = nn.LayerNorm(dim)
        self.ln_quant = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.pool_quant = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.head = qnn.QuantLinear(dim, 4, bias=True, weight_bit_width=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x)
        a, _ = self.attn(x, x, x, need_weights=False)
        h = self.ln_quant(self.ln(self.res(x) + self.res(a)))
        return self.head(self.pool_quant(h.value.mean(dim=1)))


def mha_encoder(out: Path) -> Path:
    """Exported at batch size 1 after a calibration pass (the seq-first head split bakes the batch into its
    Reshape targets; the front end frees them)."""
    torch.manual_seed(0)
    model = MhaEncoder()
    with torch.no_grad():
        model(torch.randn(16, 8, 32))
    return _export(model, (1, 8, 32), out / "mha_encoder.onnx", dynamo=False)


class A2QNet(nn.Module):
    """Accumulator-aware quantisation (Brevitas A2Q): every layer's 8-bit weights are constrained so that its
    integer accumulator provably fits `ACCUMULATOR_BITS[layer]` bits for any input of the declared width (8-bit
    pixels, 4-bit activations). Two convolutions with BatchNorm and a classifier on 8x8 digits-sized input."""

    ACCUMULATOR_BITS = {"conv1": 16, "conv2": 12, "fc": 14}

    def __init__(self) -> None:
        import brevitas.nn as qnn
        from brevitas.quant import Int8AccumulatorAwareWeightQuant, Uint8ActPerTensorFloat

        super().__init__()
        acc = self.ACCUMULATOR_BITS
        a2q = {"weight_quant": Int8AccumulatorAwareWeightQuant, "weight_bit_width": 8}
        self.quant = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1, bias=False, weight_accumulator_bit_width=acc["conv1"], **a2q)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(8, 8, 3, padding=1, bias=False, weight_accumulator_bit_width=acc["conv2"], **a2q)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu2 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.pool = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(8 * 4 * 4, 10, bias=True, weight_accumulator_bit_width=acc["fc"], **a2q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(self.quant(x))))
        x = self.pool(self.relu2(self.bn2(self.conv2(x))))
        return self.fc(torch.flatten(x, 1))


def a2q(out: Path) -> Path:
    """Exported by edge's exporter, which writes the A2Q weights PyTorch computes with (Brevitas' own QONNX export
    writes the raw, unnormalised ones: see edge/a2q.py)."""
    from edge.train import export_qonnx_file

    torch.manual_seed(0)
    model = A2QNet()
    randomise_batchnorm(model)
    path = out / "a2q.onnx"
    export_qonnx_file(model, (1, 8, 8), path, {})
    return path


IDIOMS: dict[str, Callable[[Path], Path]] = {"concat": concat, "trunc_avgpool": trunc_avgpool, "ceil_pool": ceil_pool,
                                             "per_channel_act": per_channel_act, "stem_pool": stem_pool,
                                             "pixel_shuffle": pixel_shuffle, "unet": unet,
                                             "activation_tables": activation_tables, "mha_encoder": mha_encoder,
                                             "a2q": a2q, "conv_transpose": conv_transpose,
                                             "conv_transpose_4x4": conv_transpose_4x4,
                                             "conv_transpose_3x3": conv_transpose_3x3, "atrous": atrous}

def mobilenet_v1(out: Path) -> Path:
    """brevitas_examples' ImageNet `quant_mobilenet_v1_4b` (w4a4, per-channel activation scales, TruncAvgPool,
    Int32Bias) behind an 8-bit input quantiser, as finn-examples feeds it 8-bit pixels."""
    import brevitas.nn as qnn
    from brevitas_examples.imagenet_classification.models import model_with_cfg

    torch.manual_seed(0)
    net, _ = model_with_cfg("quant_mobilenet_v1_4b", pretrained=None)
    randomise_batchnorm(net)
    model = nn.Sequential(qnn.QuantIdentity(bit_width=8, return_quant_tensor=True), net)
    return _export(model, (1, 3, 224, 224), out / "mobilenet_v1_w4a4.onnx")


def proxylessnas(out: Path) -> Path:
    """brevitas_examples' ImageNet `quant_proxylessnas_mobile14_4b` (inverted residuals with residual adds, w4a4,
    8-bit first/last layers, TruncAvgPool) behind an 8-bit input quantiser, random weights."""
    import brevitas.nn as qnn
    from brevitas_examples.imagenet_classification.models import model_with_cfg

    torch.manual_seed(0)
    net, _ = model_with_cfg("quant_proxylessnas_mobile14_4b", pretrained=None)
    randomise_batchnorm(net)
    model = nn.Sequential(qnn.QuantIdentity(bit_width=8, return_quant_tensor=True), net)
    return _export(model, (1, 3, 224, 224), out / "proxylessnas_mobile14_w4a4.onnx")


IMAGENET: dict[str, Callable[[Path], Path]] = {"mobilenet_v1_w4a4": mobilenet_v1,
                                               "proxylessnas_mobile14_w4a4": proxylessnas}


FINN_EXAMPLES: dict[str, Callable[[Path], Path]] = {
    "mobilenet_v1_w4a4": mobilenet_v1, "kws_mlp_w3a3": kws_mlp, "unsw_mlp_w2a2": unsw_mlp,
    "radioml_vgg10_w4a4": radioml_vgg10,
}
