"""A small model zoo in plain torch (no torchvision): what `splitplan profile --model` builds.

Architectures follow their papers at ImageNet size (224 x 224 x 3 input, 1000 classes) unless
stated; weights are random (profiling needs shapes and timings, not accuracy).
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .errors import SplitplanError


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module | None:
    """The 1x1 projection of a residual block whose shape changes (None: identity)."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet (He et al., 2016)."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        depths: list[int],
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stages = 64, []
        for i, depth in enumerate(depths):
            width = 64 * 2**i
            blocks = []
            for j in range(depth):
                blocks.append(block(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al., 2018), width 1.0."""

    # (expansion, channels, repeats, stride) per stage
    SETTINGS = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6())
        ]
        cin = 32
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(
            nn.Sequential(nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6())
        )
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def vgg16(num_classes: int = 1000, image: int = 224) -> nn.Module:
    """VGG-16 (Simonyan and Zisserman, 2015), configuration D, for `image` x `image` inputs."""
    # five stages of 3x3 convs (output channels), each stage followed by a 2x2 max pool
    stages = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
    layers: list[nn.Module] = []
    cin = 3
    for stage in stages:
        for cout in stage:
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
            cin = cout
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Linear(512 * (image // 32) ** 2, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, 4096),
        nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    )


class Attention(nn.Module):
    """Multi-head self-attention written with plain matmuls (traceable by torch.fx)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """A small Vision Transformer (Dosovitskiy et al., 2021): ViT-Tiny-like, 16 x 16 patches."""

    def __init__(
        self,
        dim: int = 192,
        depth: int = 12,
        heads: int = 3,
        patch: int = 16,
        image: int = 224,
        num_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


def mlp(sizes: tuple[int, ...] = (784, 512, 512, 512, 10)) -> nn.Module:
    """A fully connected network with equal-width hidden layers (default: MNIST-sized)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


ZOO: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    # name: (constructor, input shape including the batch of 1)
    "resnet18": (lambda: ResNet(BasicBlock, [2, 2, 2, 2]), (1, 3, 224, 224)),
    "resnet50": (lambda: ResNet(Bottleneck, [3, 4, 6, 3]), (1, 3, 224, 224)),
    "resnet101": (lambda: ResNet(Bottleneck, [3, 4, 23, 3]), (1, 3, 224, 224)),
    "mobilenetv2": (MobileNetV2, (1, 3, 224, 224)),
    "vgg16": (vgg16, (1, 3, 224, 224)),
    "vit-tiny": (ViT, (1, 3, 224, 224)),
    "mlp": (mlp, (1, 784)),
}


def build(name: str) -> tuple[nn.Module, torch.Tensor]:
    """The model `name` in eval mode and an example input; ValueError for an unknown name."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(ZOO)}")
    make, shape = ZOO[name]
    torch.manual_seed(0)
    return make().eval(), torch.randn(*shape)


# --------------------------------------------------------------------------- your own model

INPUT_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
}


class ModelError(SplitplanError, ValueError):
    """A model reference that cannot be built (the message names the reference and the reason)."""


def parse_shape(text: str) -> tuple[int, ...]:
    """``1,3,224,224`` (or ``1x3x224x224``) -> (1, 3, 224, 224); ModelError if malformed."""
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise ModelError(f"--input-shape {text!r}: expected integers like 1,3,224,224") from None
    if not shape or any(d < 1 for d in shape):
        raise ModelError(f"--input-shape {text!r}: every dimension must be >= 1")
    return shape


def _import_attr(ref: str) -> object:
    """The object named by ``path/to/file.py:Name`` or ``package.module:name``."""
    where, _, attr = ref.rpartition(":")
    if not where or not attr:
        raise ModelError(
            f"unknown model {ref!r}; expected a zoo name ({', '.join(ZOO)}), "
            "path/to/file.py:Name or package.module:name"
        )
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ModelError(f"--model {ref!r}: no such file {where}")
        module_name = f"_splitplan_user_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ModelError(f"--model {ref!r}: cannot import {where}")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))  # its own sibling imports
        try:
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ModelError(f"--model {ref!r}: importing {where} failed: {exc}") from None
        finally:
            sys.path.remove(str(path.resolve().parent))
    else:
        try:
            module = importlib.import_module(where)
        except Exception as exc:
            raise ModelError(f"--model {ref!r}: cannot import module {where}: {exc}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"--model {ref!r}: {where} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def load_model(
    ref: str, input_shape: tuple[int, ...] | None = None, input_dtype: str = "float32"
) -> tuple[nn.Module, torch.Tensor]:
    """The model that `ref` names, in eval mode, and a random example input.

    `ref` is a zoo name, ``path/to/file.py:ClassOrFactory`` or ``package.module:factory``; a class
    or factory is called without arguments and must return an `nn.Module`. Weights are whatever
    the constructor makes, after ``torch.manual_seed(0)`` (so a randomly initialised model is the
    same every time it is built). `input_shape` (batch included) is required for your own model;
    the input is ``torch.randn`` for float dtypes and ``torch.randint(0, 2)`` for integer ones.
    """
    if input_dtype not in INPUT_DTYPES:
        raise ModelError(
            f"--input-dtype {input_dtype!r}: expected one of {', '.join(INPUT_DTYPES)}"
        )
    if ref in ZOO:
        model, x = build(ref)
        shape = input_shape or tuple(x.shape)
    else:
        obj = _import_attr(ref)
        if not callable(obj):
            raise ModelError(f"--model {ref!r}: {type(obj).__name__} is not a class or factory")
        if input_shape is None:
            raise ModelError(
                f"--model {ref!r}: your own model needs --input-shape (e.g. 1,3,32,32)"
            )
        torch.manual_seed(0)
        try:
            model = obj()
        except Exception as exc:
            raise ModelError(
                f"--model {ref!r}: calling it without arguments failed: {exc}"
            ) from None
        if not isinstance(model, nn.Module):
            raise ModelError(
                f"--model {ref!r}: returned a {type(model).__name__}, not a torch.nn.Module"
            )
        model = model.eval()
        shape = input_shape
    dtype = INPUT_DTYPES[input_dtype]
    gen = torch.Generator().manual_seed(0)
    if dtype.is_floating_point:
        x = torch.randn(*shape, generator=gen).to(dtype)
    else:
        x = torch.randint(0, 2, shape, generator=gen, dtype=dtype)
    return model, x
