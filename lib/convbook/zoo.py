"""ImageNet reference architectures assembled from convbook's blocks, held against torchvision.

Each function builds the network torchvision builds under the same name; the tests check the
parameter count and, after ``copy_weights``, equal outputs. Random weights only: nothing here
downloads.
"""

from __future__ import annotations

import torch
from torch import nn

from convbook.blocks import ConvBNAct
from convbook.errors import ConfigError


class AlexNet(nn.Module):
    """AlexNet: five conv layers, three fully connected ones.

    ``widths`` and ``groups`` select the variant: torchvision's single-tower network
    (64, 192, 384, 256, 256; no groups), or Krizhevsky et al.'s 2012 two-tower one
    (96, 256, 384, 384, 256; conv2, conv4 and conv5 in two groups).
    """

    def __init__(self, widths: tuple[int, ...] = (64, 192, 384, 256, 256),
                 groups: tuple[int, ...] = (1, 1, 1, 1, 1), num_classes: int = 1000,
                 dropout: float = 0.5) -> None:
        super().__init__()
        if len(widths) != 5 or len(groups) != 5:
            raise ConfigError("AlexNet takes five widths and five group counts, one per conv layer")
        c1, c2, c3, c4, c5 = widths
        g1, g2, g3, g4, g5 = groups
        self.features = nn.Sequential(
            ConvBNAct(3, c1, 11, stride=4, padding=2, groups=g1, norm=False),
            nn.MaxPool2d(3, 2),
            ConvBNAct(c1, c2, 5, padding=2, groups=g2, norm=False),
            nn.MaxPool2d(3, 2),
            ConvBNAct(c2, c3, 3, groups=g3, norm=False),
            ConvBNAct(c3, c4, 3, groups=g4, norm=False),
            ConvBNAct(c4, c5, 3, groups=g5, norm=False),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c5 * 36, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def alexnet(num_classes: int = 1000) -> AlexNet:
    """torchvision's ``alexnet``: the single-tower variant of Krizhevsky (2014), "One weird trick"."""
    return AlexNet(num_classes=num_classes)


def alexnet_2012(towers: int = 2, num_classes: int = 1000) -> AlexNet:
    """The 2012 paper's AlexNet: its widths, with conv2/4/5 split into ``towers`` groups
    (towers=1 gives the same widths without the split)."""
    return AlexNet(widths=(96, 256, 384, 384, 256), groups=(1, towers, 1, towers, towers),
                   num_classes=num_classes)


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy ``source``'s parameters and buffers into ``target`` in registration order.

    The two must hold the same tensors in the same order under different names (a convbook
    network and its torchvision twin); a shape mismatch stops with the first offending pair.
    """
    src = list(source.state_dict().items())
    dst = list(target.state_dict().items())
    if len(src) != len(dst):
        raise ConfigError(f"source has {len(src)} tensors, target {len(dst)}: not the same network")
    new_state = {}
    for (src_name, tensor), (dst_name, current) in zip(src, dst):
        if tensor.shape != current.shape:
            raise ConfigError(f"{src_name} {tuple(tensor.shape)} does not fit {dst_name} "
                              f"{tuple(current.shape)}")
        new_state[dst_name] = tensor.clone()
    target.load_state_dict(new_state)
