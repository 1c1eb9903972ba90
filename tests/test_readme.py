"""The README's code runs and prints what it promises."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_example_runs() -> None:
    blocks = python_blocks()
    assert blocks, "README.md has no python example"
    proc = subprocess.run(
        [sys.executable, "-c", blocks[0]], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Hello, world!\n"


def test_every_readme_example_builds() -> None:
    for block in python_blocks()[1:]:
        code = block.replace("8000", "0")  # never a fixed port in tests
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode == 0, (block, proc.stderr)


def test_readme_names_both_commands() -> None:
    text = README.read_text()
    assert "python -m pip install -e . && python -m netcomp.web" in text
    assert "python -m pip install -e '.[test]' && python -m pytest" in text
