"""Kernel algebra: sums, products and positive scalings of kernels.

Sums and products of PSD kernels are PSD (the product by the Schur product
theorem), and so is ``c · k`` for ``c > 0``. ``Sum`` and ``Product`` hold a flat
tuple of terms: ``k1 + k2 + k3`` is one ``Sum`` of three kernels, not a nested
binary tree, which keeps traced programs (and compile times) small.

Each combination works at the matrix level, so every term keeps its own fast
path: ``(k1 + k2).gram(X) == k1.gram(X) + k2.gram(X)``.
"""

from __future__ import annotations

import functools
import operator

from jaxtyping import Array, Float

from ..parameters import positive_field
from .base import Kernel


class _Combination(Kernel):
    """A kernel built from a flat tuple of ``kernels`` combined elementwise by ``_combine``."""

    kernels: tuple[Kernel, ...]

    def __check_init__(self):
        if not (isinstance(self.kernels, tuple) and len(self.kernels) >= 1):
            raise TypeError("`kernels` must be a non-empty tuple of Kernel instances.")
        for term in self.kernels:
            if not isinstance(term, Kernel):
                raise TypeError(f"`kernels` must hold Kernel instances, got {type(term).__name__}.")

    @staticmethod
    def _combine(a, b):
        raise NotImplementedError

    @classmethod
    def of(cls, *terms: Kernel):
        """Combine ``terms``, splicing in the terms of any operand of the same kind."""
        flat = []
        for term in terms:
            flat.extend(term.kernels if type(term) is cls and term.active_dims is None else (term,))
        return cls(tuple(flat))

    def _reduce(self, values):
        return functools.reduce(self._combine, values)

    # Each term selects its own active_dims from the columns this combination selected.
    def evaluate(self, x, y):
        return self._reduce([k._pointwise(x, y) for k in self.kernels])

    def _cross(self, X, Y):
        return self._reduce([k._cross_on(X, Y) for k in self.kernels])

    def _gram(self, X):
        return self._reduce([k._gram_on(X) for k in self.kernels])

    def _diag(self, X):
        return self._reduce([k._diag_on(X) for k in self.kernels])

    def _check_active_input_dim(self, d):
        for term in self.kernels:
            term.check_input_dim(d)

    def matrix_path(self, d, dtype):
        d = self._active_dim(d)
        return "+".join(k.matrix_path(d, dtype) for k in self.kernels)


class Sum(_Combination):
    """``k(x, y) = Σ_i k_i(x, y)``. Built by ``k1 + k2``.

    The sum of independent processes ``f = f_1 + f_2 + …``. ``k1 + k2 + k3`` is
    one flat ``Sum`` of three terms.

    Attributes:
        kernels: the terms, a non-empty tuple of kernels (``k.kernels[i]``).
    """

    _combine = staticmethod(operator.add)


class Product(_Combination):
    """``k(x, y) = Π_i k_i(x, y)``. Built by ``k1 * k2``.

    Positive semi-definite by the Schur product theorem. ``k1 * k2 * k3`` is one
    flat ``Product`` of three factors.

    Attributes:
        kernels: the factors, a non-empty tuple of kernels (``k.kernels[i]``).
    """

    _combine = staticmethod(operator.mul)


class Scaled(Kernel):
    """``k(x, y) = scale · base(x, y)`` with ``scale > 0``. Built by ``c * k`` or ``k * c``.

    Attributes:
        kernel: the base kernel.
        scale: the positive factor, a hyperparameter that ``fit`` optimises.

    Raises:
        ValueError: if ``scale`` is not positive and finite.
        TypeError: if ``kernel`` is not a :class:`Kernel`.
    """

    kernel: Kernel
    scale: Float[Array, ""] = positive_field(shape="scalar")

    def __check_init__(self):
        if not isinstance(self.kernel, Kernel):
            raise TypeError(f"`kernel` must be a Kernel, got {type(self.kernel).__name__}.")

    def evaluate(self, x, y):
        return self.scale * self.kernel._pointwise(x, y)

    def _cross(self, X, Y):
        return self.scale * self.kernel._cross_on(X, Y)

    def _gram(self, X):
        return self.scale * self.kernel._gram_on(X)

    def _diag(self, X):
        return self.scale * self.kernel._diag_on(X)

    def _check_active_input_dim(self, d):
        self.kernel.check_input_dim(d)

    def matrix_path(self, d, dtype):
        return self.kernel.matrix_path(self._active_dim(d), dtype)
