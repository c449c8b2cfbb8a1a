"""Prefect blocks of the platform; ``prefect block register -m blocks`` registers them."""

from blocks.target import PlatformTarget

__all__ = ["PlatformTarget"]
