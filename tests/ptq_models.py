"""Float models for `edge quantize` tests, written as people write them: a plain-PyTorch CNN (BatchNorm, ReLU6,
depthwise + residual, AdaptiveAvgPool, torch.flatten), torchvision's MobileNetV2 and ResNet-18, and a Hugging Face
BERT classifier built from a small config (nothing downloaded). Each is a FILE.py:FACTORY target."""

from __future__ import annotations

import torch
from torch import nn

INPUT_SHAPE = (1, 8, 8)


class InvertedResidual(nn.Module):
    """Depthwise 3x3 + pointwise 1x1 with BatchNorm, added to its input."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.act = nn.ReLU6()
        self.pw = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.pw(self.act(self.bn1(self.dw(x)))))


class FloatCNN(nn.Module):
    def __init__(self, c: int = 12) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.ReLU6()
        self.block = InvertedResidual(c)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(self.act(self.bn(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return FloatCNN()


def small_convnet() -> nn.Module:
    """Conv + BatchNorm + ReLU + flatten + linear: what a float ONNX export of a small classifier holds."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 10)).eval()


def cnn_wide() -> nn.Module:
    """The same CNN with 32 channels: the benchmark's float model (too large for pynq-z2 at w8a8)."""
    torch.manual_seed(0)
    return FloatCNN(32)


def not_a_module() -> str:
    return "nope"


def _bn_stats(model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """Random weights with BatchNorm statistics of real activations (as after training), not the identity defaults
    that shrink a deep random network's outputs towards zero."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(32, *shape))
    return model.eval()


def mobilenet_v2() -> nn.Module:
    from edge.ptq.source import torchvision_importable

    torchvision_importable()
    import torchvision

    torch.manual_seed(0)
    return _bn_stats(torchvision.models.mobilenet_v2(num_classes=10, width_mult=0.35), (3, 32, 32))


def resnet18() -> nn.Module:
    from edge.ptq.source import torchvision_importable

    torchvision_importable()
    import torchvision

    torch.manual_seed(0)
    return _bn_stats(torchvision.models.resnet18(num_classes=10), (3, 32, 32))


def bert() -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=16, num_labels=3)
    return BertForSequenceClassification(cfg)


def hf_vit() -> nn.Module:
    """Hugging Face's ViT on 8x8 one-channel images: a class token concatenated to the patch tokens, pre-LN blocks."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    cfg = ViTConfig(image_size=8, patch_size=2, num_channels=1, hidden_size=32, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=64, num_labels=10)
    return ViTForImageClassification(cfg)
