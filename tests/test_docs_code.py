"""Every Python block of the documentation runs (docs/codeblocks.py says how they are
marked): programs exit 0 and print what the page says, files import (test_*.py files pass
under pytest), and the few blocks marked not-run say why and stay few."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
import codeblocks  # noqa: E402

TIMEOUT = 60
#: Fragments that cannot run alone (a Redis server, a program's own module, ...): at most
#: this many, each with its reason. Raise it only with a reason in the commit message.
MAX_NOT_RUN = 12
GUIDES = [p for p in codeblocks.pages() if p not in codeblocks.TUTORIAL]


def run(folder: Path, args: list[str], where: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(folder), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def check_page(folder: Path, page: str) -> int:
    """Run the page's blocks in ``folder`` (its files written first); return how many ran."""
    ran = 0
    for block in codeblocks.blocks(page):
        if block.kind == "file":
            (folder / block.arg).write_text(block.code)
            if block.arg.startswith("test_"):
                args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
                run(folder, [*args, "-W", "error", block.arg], block.where())
            else:
                run(folder, ["-c", f"import {block.arg.removesuffix('.py')}"], block.where())
            ran += 1
        elif block.kind == "run":
            script = folder / f"block_{block.line}.py"
            script.write_text(block.code)
            printed = run(folder, [script.name], block.where())
            if block.output is not None:
                assert codeblocks.matches(block.output, printed), (
                    f"{block.where()} printed:\n{printed}\nthe page says:\n{block.output}"
                )
            ran += 1
    return ran


@pytest.mark.timeout(240)  # eleven programs in a row, each bounded by TIMEOUT
def test_the_tutorial_program_grows_and_runs(tmp_path: Path) -> None:
    ran = sum(check_page(tmp_path, page) for page in codeblocks.TUTORIAL)
    assert ran >= 10  # the tutorial is made of programs, not fragments


@pytest.mark.parametrize("page", GUIDES)
def test_every_block_of_a_page_runs(page: str, tmp_path: Path) -> None:
    check_page(tmp_path, page)


def test_every_tutorial_page_is_on_disk_and_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in codeblocks.TUTORIAL:
        assert (codeblocks.DOCS / page).exists(), page
        assert page in nav, page


def test_not_run_blocks_are_few_and_say_why() -> None:
    skipped = [b for p in codeblocks.pages() for b in codeblocks.blocks(p) if b.kind == "not-run"]
    ran = [
        b for p in codeblocks.pages() for b in codeblocks.blocks(p) if b.kind in ("run", "file")
    ]
    assert all(len(b.arg) >= 10 for b in skipped), [b.where() for b in skipped]
    assert len(skipped) <= MAX_NOT_RUN, [f"{b.where()}: {b.arg}" for b in skipped]
    assert len(ran) >= 3 * len(skipped), (len(ran), len(skipped))


def test_the_marks_are_understood() -> None:
    text = "Some prose.\n\n<!-- not-run: needs a Redis server -->\n```python\nx\n```\n\n"
    text += "```python\nprint('hi')\n```\n\n<!-- output -->\n```text\nh...\n```\n"
    kinds = [(b.kind, b.arg, b.output) for b in codeblocks.blocks("marks.md", text)]
    assert kinds == [
        ("not-run", "needs a Redis server", None),
        ("run", "", "h...\n"),
        ("output", "", None),
    ]
    assert codeblocks.matches("h...\n", "hi\n") and not codeblocks.matches("h...", "ho\nhi")
