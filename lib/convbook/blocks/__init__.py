"""Small building blocks, one module per idea of the book."""

from convbook.blocks.conv import ConvBNAct
from convbook.blocks.grouped import TwoTowerFeatures

__all__ = ["ConvBNAct", "TwoTowerFeatures"]
