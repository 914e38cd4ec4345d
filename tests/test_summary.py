"""gpjax_lite.summary: one row per hyperparameter leaf, with the values the model holds.

The table is parsed back (columns are separated by two or more spaces; no cell
holds two spaces in a row) and compared with the model's own leaves, read by
attribute access in the test.
"""

import ast
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import naming

import gpjax_lite as gl
import gpjax_lite.kernels as gk
from gpjax_lite.means import Constant
from gpjax_lite.sparse import SVGP

HEADER = ["path", "value", "constraint", "status", "shape", "dtype"]


def parse(table: str) -> dict[str, dict[str, str]]:
    lines = table.split("\n")
    assert re.split(r"\s{2,}", lines[0].strip()) == HEADER
    assert set(lines[1].replace(" ", "")) == {"-"}
    rows = {}
    for line in lines[2:]:
        cells = re.split(r"\s{2,}", line.strip())
        assert len(cells) == len(HEADER), line
        assert cells[0] not in rows, f"duplicate row {cells[0]}"
        rows[cells[0]] = dict(zip(HEADER[1:], cells[1:]))
    return rows


def value_of(cell: str) -> np.ndarray:
    return np.asarray(ast.literal_eval(cell.replace("...", "None")), dtype=object)


def composite_gp():
    rbf = gk.RBF(variance=1.7, lengthscale=jnp.array([0.5, 2.25, math.pi]))
    periodic = gk.Periodic(variance=1.0, lengthscale=0.8, period=365.25)
    matern = 0.123456789 * gk.Matern32(variance=2.0, lengthscale=12.5)
    return gl.GP(rbf * periodic + matern, mean=Constant(-3.5), noise=1e-3)


def test_one_row_per_leaf_with_values_constraints_and_shapes():
    gp = composite_gp()
    text = gl.summary(gp)
    assert isinstance(text, str) and not text.endswith("\n")
    rows = parse(text)
    product, scaled = gp.kernel.kernels
    rbf, periodic = product.kernels
    expected = {
        "kernel.kernels[0].kernels[0].variance": rbf.variance,
        "kernel.kernels[0].kernels[0].lengthscale": rbf.lengthscale,
        "kernel.kernels[0].kernels[1].variance": periodic.variance,
        "kernel.kernels[0].kernels[1].lengthscale": periodic.lengthscale,
        "kernel.kernels[0].kernels[1].period": periodic.period,
        "kernel.kernels[1].kernel.variance": scaled.kernel.variance,
        "kernel.kernels[1].kernel.lengthscale": scaled.kernel.lengthscale,
        "kernel.kernels[1].scale": scaled.scale,
        "mean.value": gp.mean.value,
        "noise": gp.noise,
    }
    assert list(rows) == list(expected)  # the model's own order, nothing else
    for path, leaf in expected.items():
        row = rows[path]
        if jnp.ndim(leaf) == 0:
            np.testing.assert_allclose(float(row["value"]), float(leaf), rtol=5e-6)
        else:
            np.testing.assert_allclose(
                value_of(row["value"]).astype(float), np.asarray(leaf), rtol=5e-4
            )
        assert row["constraint"] == ("real" if path == "mean.value" else "positive")
        assert row["status"] == "trainable"
        assert row["shape"] == str(tuple(jnp.shape(leaf)))
        assert row["dtype"] == "float64"
    # At least 4 significant digits, whatever the magnitude.
    assert rows["kernel.kernels[1].scale"]["value"] == "0.123457"
    assert rows["kernel.kernels[0].kernels[1].period"]["value"] == "365.25"
    assert rows["noise"]["value"] == "0.001"
    assert rows["kernel.kernels[0].kernels[0].lengthscale"]["value"] == "[0.5, 2.25, 3.142]"


def test_fixed_as_in_fit():
    gp = composite_gp()
    text = gl.summary(gp, fixed=lambda gp: (gp.noise, gp.kernel.kernels[0].kernels[1]))
    status = {path: row["status"] for path, row in parse(text).items()}
    fixed = {"noise"} | {p for p in status if p.startswith("kernel.kernels[0].kernels[1].")}
    assert len(fixed) == 4
    for path, value in status.items():
        assert value == ("fixed" if path in fixed else "trainable"), path
    # The same selection holds those leaves in `fit` (bit-for-bit).
    X = jnp.linspace(0.0, 1.0, 8)[:, None] * jnp.ones((1, 3))
    y = jnp.sin(6 * X[:, 0])
    result = gl.fit(
        gp, X, y, num_steps=3, fixed=lambda gp: (gp.noise, gp.kernel.kernels[0].kernels[1])
    )
    after = parse(gl.summary(result.model))
    before = parse(text)
    moved = {path for path in before if after[path]["value"] != before[path]["value"]}
    assert moved and not (moved & fixed)


def test_kernel_alone_and_float32():
    kernel = gk.Matern52(variance=jnp.float32(2.5), lengthscale=jnp.array([1.0, 0.25], jnp.float32))
    rows = parse(gl.summary(kernel))
    assert list(rows) == ["variance", "lengthscale"]
    assert rows["variance"] == dict(
        value="2.5", constraint="positive", status="trainable", shape="()", dtype="float32"
    )
    assert rows["lengthscale"]["dtype"] == "float32" and rows["lengthscale"]["shape"] == "(2,)"
    np.testing.assert_allclose(value_of(rows["lengthscale"]["value"]).astype(float), [1.0, 0.25])


def test_svgp_rows_and_the_lower_triangular_constraint():
    Z = jnp.linspace(0.0, 1.0, 10)
    q_sqrt = jnp.tril(jnp.full((10, 10), 0.1)) + 0.9 * jnp.eye(10)
    model = SVGP(gk.RBF(lengthscale=0.3), Z, q_mu=jnp.arange(10.0), q_sqrt=q_sqrt)
    rows = parse(gl.summary(model, fixed=lambda m: m.inducing_inputs))
    assert set(rows) == {
        "kernel.variance",
        "kernel.lengthscale",
        "inducing_inputs",
        "likelihood.noise",
        "q_mu",
        "q_sqrt",
    }
    assert rows["q_sqrt"]["constraint"] == "lower-triangular"
    assert rows["q_sqrt"]["shape"] == "(10, 10)"
    assert rows["q_mu"]["constraint"] == "real" and rows["inducing_inputs"]["constraint"] == "real"
    assert rows["inducing_inputs"]["status"] == "fixed"
    assert rows["q_mu"]["status"] == "trainable"
    # Long arrays are elided in the middle and stay on one line.
    assert rows["q_mu"]["value"] == "[0, 1, ..., 8, 9]"
    assert rows["q_sqrt"]["value"] == "[[1, ..., 0], ..., [0.1, ..., 1]]"
    assert rows["inducing_inputs"]["value"] == "[[0], ..., [1]]"


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="`model`"):
        gl.summary({"noise": jnp.array(1.0)})
    with pytest.raises(TypeError, match=naming("fixed")):
        gl.summary(composite_gp(), fixed="noise")
    with pytest.raises(ValueError, match="`fixed`"):
        gl.summary(composite_gp(), fixed=lambda gp: gp.no_such_field)

    @jax.jit
    def inside_jit(variance):
        gl.summary(gk.RBF(variance=variance))
        return variance

    with pytest.raises(ValueError, match="outside `jax.jit`"):
        inside_jit(1.0)
