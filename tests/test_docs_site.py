"""The documentation site: its pictures come from the code, its nav holds every page,
and (where the docs extra is installed) ``mkdocs build --strict`` passes."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))
import codeblocks  # noqa: E402
import hooks  # noqa: E402

from netcomp.net import _connex  # noqa: E402  (the table the diagram is drawn from)


def test_the_connex_diagram_has_every_state_and_every_move() -> None:
    dot = hooks.connex_states_dot()
    mermaid = hooks.connex_states_mermaid()
    for (state, name), (following, _actions) in _connex.TRANSITIONS.items():
        assert f'"{state}"' in dot and f'"{following}"' in dot
        if state != following:  # a change of state is always drawn, labelled with its input
            edge = re.search(rf'"{state}" -> "{following}" \[label="([^"]*)"\]', dot)
            assert edge is not None and name in edge[1].split(", "), (state, name, following)
            plain = f"{state.replace('-', '_')} --> {following.replace('-', '_')}: {name}"
            assert plain in mermaid


def test_pages_ask_only_for_pictures_the_build_draws() -> None:
    asked = {
        name
        for page in codeblocks.pages()
        for name in hooks.PICTURE.findall((DOCS / page).read_text())
    }
    assert asked == set(hooks.PICTURES)


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    listed = set(re.findall(r"^\s+- (?:[^:\n]+: )?(\S+\.md)$", nav, flags=re.M))
    assert listed == set(codeblocks.pages())


@pytest.mark.timeout(240)
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("the docs extra is not installed (pip install -e '.[docs]')")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    for page in ("tutorial/4-tcp-chat", "guides/connex", "reference/netcomp.web"):
        assert (tmp_path / page / "index.html").exists(), page
    for picture in ("tutorial/pictures/tutorial-sequence.svg", "examples/chat_server.py"):
        assert (tmp_path / picture).exists(), picture
