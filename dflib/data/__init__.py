"""Torch datasets of focal stacks: one module per source."""

from dflib.data.synthetic import SyntheticFocalStackDataset

__all__ = ["SyntheticFocalStackDataset"]
