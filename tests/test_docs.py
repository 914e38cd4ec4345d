"""The documentation's code runs.

* Every ```` ```python ```` block in ``docs/**/*.md`` and ``README.md`` is
  executed, one test per (file, block index). The blocks of one page share a
  namespace and run in order, as a reader would paste them: a block may use
  names defined by earlier blocks of its page. Running a single block (say
  with ``-k``) first runs the blocks before it. A block directly preceded by
  the line ``<!-- skip-test -->`` is not run (keep that for shell- or
  GPU-only code). Blocks run with float64 enabled (``tests/conftest.py``,
  and every page enables it in its first block), in a temporary working
  directory shared by the blocks of one page.
* A block that imports an optional extra's module that is not installed
  (``OPTIONAL_MODULES``: matplotlib from ``examples``, numpyro from
  ``numpyro``) skips, and so does the rest of its page, which may use what
  the block defines: the README's ``pip install -e '.[dev]'`` has neither
  numpyro nor the need for it.
* ``docs/make_figures.py --quick`` runs and writes its PNGs (skipped without
  matplotlib).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP_MARKER = "<!-- skip-test -->"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
PYTHON_INFO = {"python", "py", "python3"}


@dataclass(frozen=True)
class Block:
    path: Path
    index: int  # among the runnable-or-skipped python blocks of the file
    line: int  # 1-based line of the first code line
    code: str
    skip: bool


def python_blocks(path: Path) -> list[Block]:
    """The fenced python blocks of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening.group("indent"), opening.group("fence")
        info = opening.group("info").strip()
        language = info.split()[0].lstrip(".{").rstrip("}").lower() if info else ""
        body_start = i + 1
        j = body_start
        while j < len(lines) and not re.match(
            rf"^{re.escape(indent)}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", lines[j]
        ):
            j += 1
        if language in PYTHON_INFO:
            previous = next(
                (lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), ""
            )
            code = textwrap.dedent("\n".join(lines[body_start:j]))
            blocks.append(
                Block(path, len(blocks), body_start + 1, code, skip=previous == SKIP_MARKER)
            )
        i = j + 1
    return blocks


def doc_files() -> list[Path]:
    files = sorted(DOCS.rglob("*.md")) if DOCS.is_dir() else []
    readme = ROOT / "README.md"
    if readme.is_file():
        files.append(readme)
    return files


ALL_BLOCKS = [block for path in doc_files() for block in python_blocks(path)]


def _block_id(block: Block) -> str:
    return f"{block.path.relative_to(ROOT).as_posix()}-{block.index}"


#: Modules of optional extras (matplotlib: ``examples``; numpyro: ``numpyro``).
OPTIONAL_MODULES = ("matplotlib", "numpyro")


def _missing_optional(error: ModuleNotFoundError) -> str | None:
    module = (error.name or "").split(".")[0]
    return module if module in OPTIONAL_MODULES else None


class _Page:
    """The shared state of one Markdown file's blocks."""

    def __init__(self, path: Path, workdir: Path):
        self.namespace: dict = {"__name__": "__docs__"}
        self.done = 0  # blocks [0, done) have run
        self.failed: int | None = None
        self.missing: str | None = None  # an optional module a block needed
        self.workdir = workdir


_PAGES: dict[Path, _Page] = {}


def _run(block: Block, page: _Page) -> None:
    if block.skip:
        return
    # Pad with blank lines so tracebacks point at the Markdown file's own lines.
    source = "\n" * (block.line - 1) + block.code
    cwd = os.getcwd()
    os.chdir(page.workdir)
    try:
        exec(compile(source, str(block.path), "exec"), page.namespace)  # noqa: S102
    finally:
        os.chdir(cwd)
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")


@pytest.mark.skipif(not ALL_BLOCKS, reason="no python blocks in docs/ or README.md")
@pytest.mark.parametrize("block", ALL_BLOCKS, ids=_block_id)
def test_doc_snippet(block: Block, tmp_path_factory):
    page = _PAGES.get(block.path)
    if page is None:
        workdir = tmp_path_factory.mktemp(block.path.stem)
        page = _PAGES[block.path] = _Page(block.path, workdir)
    blocks = python_blocks(block.path)
    # Run the earlier blocks of the page first (when this one was selected alone,
    # or earlier ones were deselected).
    while page.done < block.index:
        earlier = blocks[page.done]
        if page.failed is None and page.missing is None:
            try:
                _run(earlier, page)
            except Exception as error:  # noqa: BLE001 - reported below
                if isinstance(error, ModuleNotFoundError) and _missing_optional(error):
                    page.missing = _missing_optional(error)
                    page.done += 1
                    continue
                page.failed = earlier.index
                pytest.fail(
                    f"block {earlier.index} of {block.path.name} (line {earlier.line}), which "
                    f"block {block.index} depends on, failed: {error!r}"
                )
        page.done += 1
    if page.failed is not None and page.failed < block.index:
        pytest.fail(f"an earlier block ({page.failed}) of {block.path.name} failed")
    if page.missing is not None:
        page.done = block.index + 1
        pytest.skip(f"needs {page.missing} (an earlier block of the page imports it)")
    if block.skip:
        page.done = block.index + 1
        pytest.skip(f"marked {SKIP_MARKER}")
    try:
        _run(block, page)
    except ModuleNotFoundError as error:
        if _missing_optional(error) is not None:
            page.missing = _missing_optional(error)
            page.done = block.index + 1
            pytest.skip(f"needs {page.missing}")
        page.failed = block.index
        raise
    except BaseException:
        page.failed = block.index
        raise
    finally:
        page.done = max(page.done, block.index + 1)


def test_collector_finds_blocks(tmp_path):
    """The parser: languages, indentation (admonitions), the skip marker, other fences."""
    md = tmp_path / "page.md"
    md.write_text(
        textwrap.dedent(
            """\
            Text.

            ```python
            a = 1
            ```

            ```bash
            echo not python
            ```

            <!-- skip-test -->
            ```python
            raise RuntimeError("skipped")
            ```

            !!! note
                ```python title="indented"
                b = a + 1
                ```

            ````markdown
            ```python
            not_a_block = True
            ```
            ````
            """
        )
    )
    blocks = python_blocks(md)
    assert [b.code for b in blocks] == ["a = 1", 'raise RuntimeError("skipped")', "b = a + 1"]
    assert [b.skip for b in blocks] == [False, True, False]
    assert blocks[0].line == 4


@pytest.mark.slow
def test_make_figures_runs(tmp_path):
    """``python docs/make_figures.py --quick --out DIR`` writes non-empty PNGs."""
    pytest.importorskip("matplotlib")
    script = DOCS / "make_figures.py"
    env = dict(os.environ, MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    completed = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    for name in [
        "kernels_grid.png",
        "kernel_rbf.png",
        "kernel_lengthscales.png",
        "kernel_algebra.png",
        "kernel_ard.png",
        "posterior.png",
        "marginal_likelihood.png",
        "loss_curve.png",
    ]:
        assert name in written, f"{name} missing from {written}"
    assert all((tmp_path / name).stat().st_size > 1000 for name in written)
