"""Deformable convolution (Dai et al., 2017; v2: Zhu et al., 2019): a kernel whose taps move.

A plain convolution reads its k × k taps at fixed offsets around each output position. A
deformable one adds a learned offset (Δy, Δx) to every tap, predicted from the input by a
second convolution, and reads the input there by bilinear interpolation (0 outside the image).
Version 2 also predicts a weight per tap (modulation). The computation is torchvision's
``ops.deform_conv2d``; its offset layout, for offset group g and tap (i, j) (row by row), puts
Δy in channel ``g·2·k·k + 2·(i·k + j)`` and Δx in the next one.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops import deform_conv2d

from convbook.blocks.validate import check_positive, expect_input
from convbook.errors import ConfigError, NonFiniteError

OFFSET_LR = 0.1  # the offset (and mask) branch's share of the learning rate


class DeformableConv2d(nn.Module):
    """A k × k convolution whose taps move by learned offsets (DCNv1; DCNv2 with
    ``modulated=True``).

    The offset convolution (and, for v2, the mask convolution) has the kernel, stride, padding
    and dilation of the main one and starts at zero, so the untrained block is exactly a plain
    convolution. v2's mask is ``2·sigmoid`` of its convolution, so that it starts at 1 (the
    paper's plain sigmoid starts at 0.5, halving the output); it can range from 0 to 2.

    The offset and mask branches train at ``offset_lr`` (default 0.1) times the network's
    learning rate: DCNv2's setting for its offset and modulation convolutions (Zhu et al. 2019,
    §3.1). DCNv1 sets the offset layers' rate to β times the others' (β = 1 by default, 0.01
    for one fc layer of its detector); mmengine's optimiser constructor has a
    ``dcn_offset_lr_mult`` for the same purpose. At the full rate of the book's SGD (0.3) the
    zero-started offsets grew in a few steps until most taps read the padding outside chapter
    10's 8×8 map; at a tenth they stayed on it (the project's pilot runs).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int | None = None, dilation: int = 1,
                 offset_groups: int = 1, modulated: bool = False, bias: bool = False,
                 offset_lr: float = OFFSET_LR) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("kernel_size", kernel_size), ("stride", stride),
                            ("dilation", dilation), ("offset_groups", offset_groups)):
            check_positive(name, value)
        if in_channels % offset_groups:
            raise ConfigError(f"offset_groups={offset_groups} must divide in_channels="
                              f"{in_channels}; e.g. offset_groups=1")
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ConfigError(f"padding must be a whole number >= 0, got {padding!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.offset_groups, self.modulated = dilation, offset_groups, modulated
        taps = kernel_size * kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        self.offset = nn.Conv2d(in_channels, 2 * offset_groups * taps, kernel_size, stride,
                                padding, dilation)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        self.mask = None
        if modulated:
            self.mask = nn.Conv2d(in_channels, offset_groups * taps, kernel_size, stride,
                                  padding, dilation)
            nn.init.zeros_(self.mask.weight)
            nn.init.zeros_(self.mask.bias)
        if (isinstance(offset_lr, bool) or not isinstance(offset_lr, (int, float))
                or not 0 < offset_lr <= 1):
            raise ConfigError(f"offset_lr is the offset branch's share of the learning rate, "
                              f"in (0, 1], got {offset_lr!r}; {OFFSET_LR} is the default")
        self.offset_lr = offset_lr
        for branch in (self.offset, self.mask):
            for parameter in branch.parameters() if branch is not None else ():
                parameter.lr_multiplier = offset_lr  # read by train.sgd_schedule
        expect_input(self, in_channels)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"offset_groups={self.offset_groups}, modulated={self.modulated}, "
                f"offset_lr={self.offset_lr}")

    def offsets_and_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        offset = self.offset(x)
        mask = 2 * torch.sigmoid(self.mask(x)) if self.mask is not None else None
        return offset, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset, mask = self.offsets_and_mask(x)
        # torchvision's CPU kernel crashes the process (SIGSEGV) on a NaN or infinite offset;
        # one check per call (a device sync on a GPU) is cheap next to losing the kernel
        if not bool(torch.isfinite(offset).all()):
            if not bool(torch.isfinite(x).all()):
                raise NonFiniteError(f"DeformableConv2d received an input holding NaN or "
                                     f"infinite values (shape {tuple(x.shape)}); check the "
                                     f"data or the layers before it")
            raise NonFiniteError("DeformableConv2d's offsets became NaN or infinite (their "
                                 "weights are not finite: training diverged); train with a "
                                 "lower lr, or a smaller offset lr multiplier")
        # torchvision's op has no bfloat16/half CPU kernel and checks dtypes: run it in float32
        dtype = x.dtype
        with torch.autocast(x.device.type, enabled=False):
            out = deform_conv2d(x.float(), offset.float(), self.weight.float(),
                                None if self.bias is None else self.bias.float(),
                                stride=self.stride, padding=self.padding,
                                dilation=self.dilation,
                                mask=None if mask is None else mask.float())
        return out.to(dtype) if dtype in (torch.float16, torch.bfloat16) else out

    @torch.no_grad()
    def sampling_points(self, x: torch.Tensor, group: int = 0) -> torch.Tensor:
        """The input coordinates each output position's taps read: N x H_out x W_out x k² x 2,
        as (y, x) in input pixels, taps row by row, for offset group ``group``."""
        if not 0 <= group < self.offset_groups:
            raise ConfigError(f"group must be between 0 and {self.offset_groups - 1}, got {group}")
        offset, _ = self.offsets_and_mask(x)
        n, _, h, w = offset.shape
        k, taps = self.kernel_size, self.kernel_size ** 2
        field = offset[:, 2 * taps * group: 2 * taps * (group + 1)].view(n, taps, 2, h, w)
        oy = torch.arange(h, device=x.device) * self.stride - self.padding
        ox = torch.arange(w, device=x.device) * self.stride - self.padding
        ty = torch.arange(k, device=x.device).repeat_interleave(k) * self.dilation
        tx = torch.arange(k, device=x.device).repeat(k) * self.dilation
        base_y = oy[None, :, None] + ty[:, None, None]  # taps x H x 1
        base_x = ox[None, None, :] + tx[:, None, None]  # taps x 1 x W
        y = base_y[None] + field[:, :, 0]
        xx = base_x[None] + field[:, :, 1]
        return torch.stack([y, xx], dim=-1).permute(0, 2, 3, 1, 4).float()

    def extra_macs(self, x: torch.Tensor, out: torch.Tensor) -> int:
        """The multiply-accumulates FlopCounterMode misses (it counts 0 for deform_conv2d): the
        convolution over the sampled values (C_out·C_in·k² per output position), the bilinear
        sampling (4 per sampled value: C_in·k² per position) and, for v2, the mask (C_in·k²).
        The offset and mask convolutions are ordinary and counted already."""
        positions = out.shape[0] * out.shape[2] * out.shape[3]
        sampled = self.in_channels * self.kernel_size ** 2
        per_position = self.out_channels * sampled + 4 * sampled
        if self.modulated:
            per_position += sampled
        return positions * per_position
