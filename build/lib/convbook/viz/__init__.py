"""Figures, one module per kind of picture. Every function draws from numbers it is given or
computes from real modules, and returns the matplotlib Figure."""

from convbook.viz.style import apply_style

__all__ = ["apply_style"]
