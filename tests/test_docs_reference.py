"""The API reference lists every public name: each package's ``__all__`` equals the
members its page in docs/reference/ renders (mkdocstrings ``members:``), so a new public
name without a docs entry fails here, and ``mkdocs build --strict`` fails on one whose
docstring does not render."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference"
PACKAGES = [
    "netcomp",
    "netcomp.net",
    "netcomp.web",
    "netcomp.testing",
    "netcomp.broker",
    "netcomp.tools",
]


def listed(package: str, text: str | None = None) -> list[str]:
    """The names the reference page of ``package`` (or ``text``) renders, in order."""
    if text is None:
        text = (REFERENCE / f"{package}.md").read_text()
    directive = re.search(
        rf"^::: {re.escape(package)}\n    options:\n      members:\n((?:        - \S+\n)+)",
        text,
        flags=re.M,
    )
    assert directive is not None, f"docs/reference/{package}.md has no '::: {package}' list"
    return re.findall(r"- (\S+)", directive[1])


@pytest.mark.parametrize("package", PACKAGES)
def test_the_reference_lists_exactly_the_public_names(package: str) -> None:
    public = importlib.import_module(package).__all__
    names = listed(package)
    assert len(names) == len(set(names)), f"{package}: listed twice"
    missing = sorted(set(public) - set(names))
    extra = sorted(set(names) - set(public))
    assert not missing and not extra, (
        f"docs/reference/{package}.md: add {missing}, remove {extra} (not in __all__)"
    )


def test_every_reference_page_is_a_package_here() -> None:
    pages = sorted(path.stem for path in REFERENCE.glob("*.md"))
    assert pages == sorted(PACKAGES)


def test_a_page_without_a_new_name_is_caught() -> None:
    page = (REFERENCE / "netcomp.testing.md").read_text().replace("        - running\n", "")
    names = listed("netcomp.testing", page)
    assert "running" not in names
    assert set(importlib.import_module("netcomp.testing").__all__) - set(names) == {"running"}
