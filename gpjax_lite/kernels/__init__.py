"""Covariance functions. Each kernel writes its value on two points; the base class does the rest."""

from .base import Kernel, vmap_cross
from .combinations import Product, Scaled, Sum
from .constant import Constant, White
from .dot_product import Linear, Polynomial
from .periodic import Cosine, Periodic
from .sho import SHO
from .stationary import (
    RBF,
    Exponential,
    Matern12,
    Matern32,
    Matern52,
    RationalQuadratic,
    SquaredExponential,
    Stationary,
)

__all__ = [
    "Kernel",
    "Stationary",
    "RBF",
    "SquaredExponential",
    "Matern12",
    "Exponential",
    "Matern32",
    "Matern52",
    "RationalQuadratic",
    "Periodic",
    "Cosine",
    "SHO",
    "Linear",
    "Polynomial",
    "Constant",
    "White",
    "Sum",
    "Product",
    "Scaled",
    "vmap_cross",
]
