"""The unit every network in the book is made of: convolution, batch norm, activation."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from convbook.blocks.validate import (
    check_activation,
    check_groups,
    check_odd_kernel,
    check_positive,
    expect_input,
)
from convbook.errors import ConfigError


class ConvBNAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> activation, padded so stride 1 keeps the size.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: side of the square kernel (odd sizes keep the output centred).
        stride: step of the kernel.
        groups: split the channels into this many independent groups (chapter 1).
        dilation: spacing between kernel taps (chapter 9).
        activation: a module factory, or None for a linear unit.
        norm: batch norm after the convolution (then the convolution has no bias); False gives
            AlexNet-era conv + bias + activation.
        padding: override the automatic ``dilation * (kernel_size - 1) // 2``.
        bn_eps: batch norm's epsilon (GoogLeNet uses 0.001).
        norm_layer: the normalisation as a factory of the channel count, as torchvision's
            ``Conv2dNormActivation`` takes it (e.g. ``lambda c: nn.GroupNorm(4, c)``); None is
            batch norm (with ``bn_eps``). Ignored when ``norm`` is False.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        activation: Callable[[], nn.Module] | None = nn.ReLU,
        norm: bool = True,
        padding: int | None = None,
        bn_eps: float = 1e-5,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        check_positive("in_channels", in_channels)
        check_positive("out_channels", out_channels)
        check_positive("kernel_size", kernel_size)
        check_positive("stride", stride)
        check_positive("dilation", dilation)
        check_groups(in_channels, out_channels, groups)
        check_activation(activation)
        if padding is None:
            check_odd_kernel(kernel_size)
            padding = dilation * (kernel_size - 1) // 2
        elif isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ConfigError(f"padding must be a whole number >= 0 (or None for 'same'), got "
                              f"{padding!r}")
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=not norm,
            )
        ]
        if norm:
            layers.append(_norm(norm_layer, out_channels, bn_eps))
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)
        self.in_channels = in_channels
        self.out_channels = out_channels
        expect_input(self, in_channels)


def _norm(norm_layer: Callable[[int], nn.Module] | None, channels: int,
          bn_eps: float = 1e-5) -> nn.Module:
    """``norm_layer(channels)``, checked; batch norm when ``norm_layer`` is None."""
    if norm_layer is None:
        return nn.BatchNorm2d(channels, eps=bn_eps)
    if isinstance(norm_layer, nn.Module) or not callable(norm_layer):
        raise ConfigError(f"norm_layer must be a factory of the channel count, such as "
                          f"nn.BatchNorm2d or lambda c: nn.GroupNorm(4, c); got {norm_layer!r}")
    layer = norm_layer(channels)
    if not isinstance(layer, nn.Module):
        raise ConfigError(f"norm_layer({channels}) must return an nn.Module, got "
                          f"{type(layer).__name__}")
    return layer


class BNActConv(nn.Sequential):
    """The pre-activation order: BatchNorm2d -> ReLU -> Conv2d (no bias), as DenseNet and
    pre-activation ResNets use it."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1) -> None:
        check_positive("in_channels", in_channels)
        check_positive("out_channels", out_channels)
        check_odd_kernel(kernel_size)
        check_positive("stride", stride)
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                      padding=(kernel_size - 1) // 2, bias=False),
        )
        expect_input(self, in_channels)
