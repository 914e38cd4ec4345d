"""Griffe extension: read gpjax_lite's docstrings as Markdown.

The library's docstrings are Google style, but some use a few reStructuredText
habits. This extension rewrites them when mkdocstrings loads the package, so
the library source stays as it is:

* Sphinx roles -- ``:class:`GP```, ``:func:`~gpjax_lite.fit```,
  ``:meth:`sample```, ``:mod:`gpjax_lite.linalg```, ``:data:`FTOL``` -- become
  *optional* autorefs (``<autoref identifier="gpjax_lite.gp.GP" optional>``):
  a link when the target resolves to an object rendered on an API page, plain
  code otherwise, so no reference can break ``mkdocs build --strict``;
* a paragraph ending in ``::`` (reST's "literal block follows") ends in ``:``
  and the indented block after it becomes a fenced code block;
* reST section titles underlined with ``---`` or ``===`` become bold lines
  (a Markdown heading there would land in the page's table of contents);
* Sphinx ``#:`` comments above a module attribute become its docstring.

Used by ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|data|attr|obj|exc|const):`([^`]+)`")
TITLE_UNDERLINE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<title>\S[^\n]*)\n(?P=indent)(?P<bar>[-=~^]{3,})[ \t]*$", re.M
)
LITERAL_MARKER = re.compile(r"(?<=\S)::[ \t]*$", re.M)
BARE_LITERAL_MARKER = re.compile(r"^[ \t]*::[ \t]*\n", re.M)

ASSIGNMENT = re.compile(r"^\s*[A-Za-z_]\w*\s*(?::[^=]+)?=[^=]")

ROOT = "gpjax_lite"


def _lookup(root: griffe.Module, path: str):
    """The object at dotted ``path`` (starting with the root package's name), or None."""
    parts = path.split(".")
    if parts[0] != root.name:
        return None
    node: Any = root
    for part in parts[1:]:
        try:
            members = node.members
        except Exception:  # noqa: BLE001 - an unresolvable alias
            return None
        if part not in members:
            return None
        node = members[part]
    return node


def _canonical(obj) -> str | None:
    try:
        return obj.canonical_path if not isinstance(obj, griffe.Alias) else obj.final_target.path
    except Exception:  # noqa: BLE001 - alias to an external or missing object
        return None


def _resolve(root: griffe.Module, context, target: str) -> str | None:
    """Resolve a Sphinx-role target the way Sphinx would, from ``context`` outwards."""
    target = target.lstrip(".")
    candidates = [target]
    scope = context
    while scope is not None:
        candidates.append(f"{scope.path}.{target}")
        scope = scope.parent
    candidates += [f"{ROOT}.{target}", f"{ROOT}.kernels.{target}"]
    for candidate in candidates:
        found = _lookup(root, candidate)
        if found is not None:
            canonical = _canonical(found)
            if canonical is not None and canonical.startswith(ROOT):
                return canonical
    return None


def _is_private(path: str) -> bool:
    return any(part.startswith("_") and part != "__call__" for part in path.split("."))


def _rewrite(text: str, root: griffe.Module, context) -> str:
    def role(match: re.Match) -> str:
        body = match.group(2).strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", body)
        if explicit:
            title, target = explicit.group("title"), explicit.group("target")
        else:
            target = body.lstrip("~")
            title = target.rsplit(".", 1)[-1] if body.startswith("~") else target
        target = target.rstrip("()")
        if match.group(1) in ("func", "meth") and not title.endswith(")"):
            title += "()" if not explicit else ""
        resolved = _resolve(root, context, target)
        code = f"`{title}`"
        if not resolved or _is_private(resolved):
            return code
        # An *optional* autoref: a link when the target is rendered on some API
        # page, plain text (and no --strict failure) when it is not.
        return f'<autoref identifier="{resolved}" optional>{code}</autoref>'

    text = ROLE.sub(role, text)
    text = TITLE_UNDERLINE.sub(
        lambda m: (
            f"{m.group('indent')}**{m.group('title').strip()}**"
            if len(m.group("bar")) >= len(m.group("title").strip()) - 1
            else m.group(0)
        ),
        text,
    )
    text = _fence_literal_blocks(text)
    text = BARE_LITERAL_MARKER.sub("\n", text)
    return LITERAL_MARKER.sub(":", text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _fence_literal_blocks(text: str) -> str:
    """Turn reST literal blocks (``text::`` + an indented block) into fenced code blocks.

    An indented block is a Markdown code block only at the right depth (eight
    spaces inside a list item, say); a fence works at any depth. The fence is
    placed at the paragraph's indentation rounded down to a multiple of four
    (Markdown's nesting unit), so a block inside a list item closes the list
    rather than being read as a lazy continuation of it.
    """
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not LITERAL_MARKER.search(line):
            out.append(line)
            i += 1
            continue
        base = _indent(line)
        start = i + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        end = start
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
            end += 1
        while end > start and not lines[end - 1].strip():
            end -= 1
        if end == start or _indent(lines[start]) <= base:
            out.append(line)
            i += 1
            continue
        pad = " " * (base - base % 4)
        block = textwrap.dedent("\n".join(lines[start:end])).split("\n")
        out.append(LITERAL_MARKER.sub(":", line))
        out += ["", pad + "```text", *[(pad + b) if b else "" for b in block], pad + "```", ""]
        i = end
    return "\n".join(out)


def _comment_docstring(attribute: griffe.Attribute) -> str | None:
    """The ``#:`` comment lines directly above a module/class attribute, if any."""
    try:
        lines = Path(attribute.filepath).read_text(encoding="utf-8").splitlines()
    except Exception:  # noqa: BLE001
        return None
    index = (attribute.lineno or 0) - 2
    # A `#:` comment above a group of consecutive assignments documents all of them.
    while index >= 0 and ASSIGNMENT.match(lines[index]):
        index -= 1
    comment: list[str] = []
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        comment.insert(0, lines[index].lstrip()[2:].strip())
        index -= 1
    return "\n".join(comment) or None


class SphinxRolesToMarkdown(griffe.Extension):
    """Rewrite reST habits in every gpjax_lite docstring once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:  # noqa: D102
        if pkg.name != ROOT:
            return
        self._visit(pkg, pkg, seen=set())

    def _visit(self, obj, root, seen: set) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if isinstance(obj, griffe.Attribute) and obj.docstring is None:
            comment = _comment_docstring(obj)
            if comment:
                obj.docstring = griffe.Docstring(comment, parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = _rewrite(obj.docstring.value, root, obj)
        for member in list(obj.members.values()):
            if isinstance(member, griffe.Alias):
                continue
            self._visit(member, root, seen)
