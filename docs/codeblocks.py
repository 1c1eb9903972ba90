"""The fenced Python blocks of the documentation pages, and how each one is checked.

Used by tests/test_docs_code.py (which runs them) and docs/hooks.py (which builds the
tutorial program's pictures from the same code). Conventions, in a page's Markdown:

* a ``python`` block is a whole program: the test runs it (``cwd`` is a scratch folder)
  and it must exit with status 0 within its timeout;
* ``<!-- file: NAME.py -->`` on the line before a block: the block is the file NAME.py of
  that scratch folder (later blocks import it). The tutorial's pages share one folder, in
  nav order, so the program grows from page to page. A file named ``test_*.py`` is run
  with pytest;
* ``<!-- output -->`` on the line before a ``text`` block that follows a program: what
  the program prints, line by line (``...`` in a line matches anything);
* ``<!-- not-run: REASON -->`` on the line before a block: a fragment that cannot run on
  its own (it needs a Redis server, say). The test counts these, so they stay few.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DOCS = Path(__file__).resolve().parent

#: The tutorial's pages, in order: they share one scratch folder.
TUTORIAL = [
    "tutorial/index.md",
    "tutorial/1-components.md",
    "tutorial/2-channels.md",
    "tutorial/3-async.md",
    "tutorial/4-tcp-chat.md",
    "tutorial/5-connex-bot.md",
    "tutorial/6-web.md",
    "tutorial/7-testing.md",
]

_FENCE = re.compile(
    r"(?:<!--\s*(?P<mark>file|not-run|output)(?::\s*(?P<arg>.*?))?\s*-->\n)?"
    r"^```(?P<lang>[\w+-]*)[^\n]*\n(?P<code>.*?)^```\s*$",
    flags=re.S | re.M,
)


@dataclass
class Block:
    """One fenced block of a page."""

    page: str
    line: int
    lang: str
    code: str
    kind: str  # "run", "file", "not-run", "output", or "other" (not Python)
    arg: str = ""
    output: str | None = field(default=None)  # for "run": the expected output, if given

    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def blocks(page: str, text: str | None = None) -> list[Block]:
    """The fenced blocks of ``docs/<page>`` (or of ``text``), classified; outputs attached
    to their program."""
    if text is None:
        text = (DOCS / page).read_text()
    found: list[Block] = []
    for match in _FENCE.finditer(text):
        lang, mark, arg = match["lang"], match["mark"], (match["arg"] or "").strip()
        line = text.count("\n", 0, match.start("lang")) + 1
        if mark == "output":
            previous = found[-1] if found else None
            if previous is None or previous.kind != "run":
                raise ValueError(f"docs/{page}:{line}: an output block follows no program")
            previous.output = match["code"]
            found.append(Block(page, line, lang, match["code"], "output"))
        elif lang == "python":
            kind = {"file": "file", "not-run": "not-run"}.get(mark or "", "run")
            if kind == "not-run" and not arg:
                raise ValueError(f"docs/{page}:{line}: not-run needs a reason")
            found.append(Block(page, line, lang, match["code"], kind, arg))
        else:
            found.append(Block(page, line, lang, match["code"], "other", arg))
    return found


def pages() -> list[str]:
    """Every Markdown page of the site, relative to docs/ (the reference pages included)."""
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))


def write_files(folder: Path, page_names: list[str]) -> list[str]:
    """Write the ``file:`` blocks of these pages into ``folder``; return the names written
    (a later block of the same name replaces an earlier one: the program grows)."""
    names = []
    for page in page_names:
        for block in blocks(page):
            if block.kind == "file":
                (folder / block.arg).write_text(block.code)
                names.append(block.arg)
    return names


def matches(expected: str, printed: str) -> bool:
    """Whether ``printed`` is ``expected``, line by line, ``...`` matching any text."""
    want, got = expected.rstrip("\n").split("\n"), printed.rstrip("\n").split("\n")
    if len(want) != len(got):
        return False
    for pattern, line in zip(want, got, strict=True):
        regex = ".*".join(re.escape(part) for part in pattern.split("..."))
        if not re.fullmatch(regex, line.rstrip()):
            return False
    return True
