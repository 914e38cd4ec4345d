"""Session-wide test configuration.

* Single-threaded BLAS (set before NumPy/JAX are imported) keeps timings stable
  on small CI machines.
* 64-bit JAX for the whole session: float64 checks are tight; float32 tests pass
  explicit float32 arrays (Python-float hyperparameters are weakly typed, so they
  do not promote float32 inputs). ``JAX_ENABLE_X64=0`` runs the session in
  float32 mode instead (a CI pass); tests marked ``@pytest.mark.x64`` need
  float64 and skip themselves there.
* Fast compilation: the suite compiles thousands of small XLA programs and
  runs most of them once, so it asks XLA:CPU for LLVM optimisation level 0 and
  (jaxlib < 0.11) its classic fusion emitters (``--xla_backend_optimization_level=0
  --xla_cpu_use_fusion_emitters=false``), which cut the suite's CPU time by
  more than half; jaxlib 0.11 removed that flag, and XLA aborts on flags it
  does not know, so it is set only where it exists. The generated code may round differently (e.g. without
  fused multiply-adds), within every test's tolerance. It also runs XLA's
  Eigen work on one thread (``--xla_cpu_multi_thread_eigen=false``): the
  pytest-xdist workers already use every core, and a run of two workers on
  two cores once hung with every thread in a futex wait, the signature of
  XLA:CPU's thread-pool re-entrancy deadlock, which this flag avoids.
  ``XLA_FLAGS`` set by the caller are kept as they are, and
  ``GPJAX_LITE_TEST_XLA_DEFAULTS=1`` runs the suite on XLA's defaults.
* Hypothesis profiles: "default" (30 examples) and "ci" (fewer, derandomised),
  picked by the ``CI`` environment variable or ``HYPOTHESIS_PROFILE``.
* Tests marked ``@pytest.mark.gpu`` (or using the ``gpu`` fixture) are skipped
  when JAX only sees a CPU.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def _jaxlib_version() -> tuple[int, ...]:
    """The installed jaxlib's (major, minor), read without importing it."""
    from importlib.metadata import version

    return tuple(int(part) for part in version("jaxlib").split(".")[:2])


FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_multi_thread_eigen=false"
if _jaxlib_version() < (0, 11):
    # jaxlib 0.11 dropped the classic emitters, and XLA aborts the process on a flag it
    # does not know: ask for them only where they exist.
    FAST_COMPILE_FLAGS += " --xla_cpu_use_fusion_emitters=false"
if "XLA_FLAGS" not in os.environ and os.environ.get("GPJAX_LITE_TEST_XLA_DEFAULTS") != "1":
    # Read when JAX first creates its CPU client, which no import does.
    os.environ["XLA_FLAGS"] = FAST_COMPILE_FLAGS

import jax  # noqa: E402

#: 64-bit JAX unless the run asks for float32 mode (`JAX_ENABLE_X64=0`, a CI pass).
X64 = os.environ.get("JAX_ENABLE_X64", "1").lower() not in ("0", "false")
jax.config.update("jax_enable_x64", X64)

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "default",
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=10,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default")
)


def on_gpu() -> bool:
    """True when JAX's default backend is an accelerator."""
    return jax.default_backend() != "cpu"


def naming(name: str) -> str:
    """A ``match=`` regex for an error naming the argument ``name``.

    The library's own message names it in backticks (`` `name` ``); under jaxtyping's
    runtime checker (the suite's default) an annotation may reject a wrong type first,
    with a ``TypeCheckError`` (a ``TypeError``) saying "parameter 'name'". Tests import
    it with ``from conftest import naming``.
    """
    return rf"`{name}`|parameter '{name}'"


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is not None and not on_gpu():
        pytest.skip("needs an accelerator: JAX sees only a CPU")
    if item.get_closest_marker("x64") is not None and not X64:
        pytest.skip("needs float64: this run has 64-bit JAX off (JAX_ENABLE_X64=0)")


@pytest.fixture
def gpu():
    """Skip the requesting test unless JAX runs on an accelerator."""
    if not on_gpu():
        pytest.skip("needs an accelerator: JAX sees only a CPU")
    return jax.devices()[0]


@pytest.fixture(autouse=True, scope="module")
def _fresh_jax_caches():
    """Drop JAX's compiled programs after each test module.

    The suite compiles thousands of small programs; keeping them all alive in
    one process only costs memory, and long-lived processes holding that many
    executables have crashed inside XLA's CPU compiler (seen twice with jaxlib
    0.10.2, at random points late in the run).
    """
    yield
    jax.clear_caches()
