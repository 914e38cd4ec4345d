"""The supported kernels and combinations the state-space tests run on (shared by the test files)."""

from gpjax_lite import kernels as K


def supported_kernels():
    """``(id, kernel)`` pairs: every base kernel, sums, products (Kronecker) and scalings."""
    return [
        ("matern12", K.Matern12(variance=1.3, lengthscale=0.7)),
        ("matern32", K.Matern32(variance=0.8, lengthscale=2.0)),
        ("matern52", K.Matern52(variance=0.5, lengthscale=0.6)),
        ("cosine", K.Cosine(variance=0.9, period=1.7)),
        ("constant", K.Constant(variance=2.0)),
        ("sho_under", K.SHO(variance=1.1, omega=3.0, quality=4.0)),
        ("sho_critical", K.SHO(omega=1.5, quality=0.5)),
        ("sho_over", K.SHO(variance=0.7, omega=2.0, quality=0.3)),
        ("scaled", 2.5 * K.Matern32(lengthscale=0.9)),
        ("sum", K.Matern32() + K.SHO(omega=4.0, quality=2.0) + K.Constant(variance=0.3)),
        ("product", K.Matern52(lengthscale=3.0) * K.Cosine(period=1.1)),
        (
            "product3",
            K.Matern32(lengthscale=2.0)
            * K.SHO(omega=2.0, quality=3.0)
            * K.Matern12(lengthscale=5.0),
        ),
        (
            "nested",
            0.5 * (K.Matern12() * K.Constant(variance=2.0))
            + K.Matern52(lengthscale=0.4, active_dims=(0,)),
        ),
    ]


KERNELS = supported_kernels()
IDS = [name for name, _ in KERNELS]
