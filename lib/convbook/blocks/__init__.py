"""Small building blocks, one module per idea of the book."""

from convbook.blocks.bottleneck import BottleneckConv
from convbook.blocks.conv import BNActConv, ConvBNAct
from convbook.blocks.deformable import DeformableConv2d
from convbook.blocks.dense import DenseBlock, DenseLayer, Transition
from convbook.blocks.grouped import TwoTowerFeatures
from convbook.blocks.inception import Branches, Inception, NaiveInception
from convbook.blocks.residual import BasicBlock, Bottleneck
from convbook.blocks.se import ChannelGate, LocalChannelGate, SqueezeExcitation
from convbook.blocks.separable import DepthwiseSeparable, InvertedResidual
from convbook.blocks.shuffle import ChannelShuffle, ShuffleUnit, ShuffleV2Block, channel_shuffle

__all__ = [
    "BNActConv",
    "BasicBlock",
    "Bottleneck",
    "BottleneckConv",
    "Branches",
    "ChannelGate",
    "ChannelShuffle",
    "ConvBNAct",
    "DeformableConv2d",
    "DenseBlock",
    "DenseLayer",
    "DepthwiseSeparable",
    "Inception",
    "InvertedResidual",
    "LocalChannelGate",
    "NaiveInception",
    "ShuffleUnit",
    "ShuffleV2Block",
    "SqueezeExcitation",
    "Transition",
    "TwoTowerFeatures",
    "channel_shuffle",
]
