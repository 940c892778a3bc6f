"""Small building blocks, one module per idea of the book."""

from convbook.blocks.bottleneck import BottleneckConv
from convbook.blocks.conv import BNActConv, ConvBNAct
from convbook.blocks.dense import DenseBlock, DenseLayer, Transition
from convbook.blocks.grouped import TwoTowerFeatures
from convbook.blocks.inception import Branches, Inception, NaiveInception
from convbook.blocks.residual import BasicBlock, Bottleneck

__all__ = [
    "BNActConv", "BasicBlock", "Bottleneck", "BottleneckConv", "Branches", "ConvBNAct",
    "DenseBlock", "DenseLayer", "Inception", "NaiveInception", "Transition", "TwoTowerFeatures",
]
