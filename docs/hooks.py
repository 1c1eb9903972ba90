"""MkDocs hooks (mkdocs.yml ``hooks:``): what the site build adds to the pages.

* The pictures are drawn at build time, from the code: the tutorial program's component
  graph and a traced conversation as a sequence diagram (its files are taken from the
  tutorial pages, as tests/test_docs_code.py takes them, and run on 127.0.0.1, port 0),
  and the Connex state diagram from the transition table the Connex itself runs.
  A page asks for one with ``<!-- picture: NAME -->``. Graphs are drawn by Graphviz's
  ``dot``; without it, the page shows the Mermaid text instead (Material renders it).
* The examples (``examples/*.py``) and circuits' compatibility notes (``compat/*.md``)
  live outside docs/; the pages link to them as ``../examples/x.py``, which works on
  GitHub. The build copies them into the site and points those links at the copies.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mkdocs.structure.files import Files

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))
import codeblocks  # noqa: E402

PICTURE = re.compile(r"<!--\s*picture:\s*([\w-]+)\s*-->")
#: The pictures a page may ask for.
PICTURES = ("tutorial-graph", "tutorial-sequence", "connex-states")
TIMEOUT = 10.0
_pictures: dict[str, tuple[str, str]] = {}  # name -> (site path of the SVG, Mermaid text)


def _tutorial_modules(folder: Path) -> dict[str, Any]:
    """Import the tutorial's files (fresh: ``mkdocs serve`` rebuilds after edits)."""
    codeblocks.write_files(folder, codeblocks.TUTORIAL)
    sys.path.insert(0, str(folder))
    try:
        for name in ("chat", "bot", "web"):
            sys.modules.pop(name, None)
        return {name: importlib.import_module(name) for name in ("chat", "web")}
    finally:
        sys.path.remove(str(folder))
        for name in ("chat", "bot", "web"):
            sys.modules.pop(name, None)


def _conversation(chat: Any) -> tuple[str, str]:
    """A traced conversation with the tutorial's chat server: Mermaid and SVG."""
    from netcomp.net import TCPServer
    from netcomp.testing import running
    from netcomp.tools import sequence_mermaid, sequence_svg

    app = chat.build(port=0)
    server = next(c for c in app.walk() if isinstance(c, TCPServer))
    address = (server.host, server.port)
    app.flush()  # the registrations, before the trace begins
    with running(app, trace=True) as events:
        with socket.create_connection(address, timeout=TIMEOUT) as ada:
            ada_in = ada.makefile()
            ada_in.readline()
            ada.sendall(b"ada\nhello\n")
            ada_in.readline(), ada_in.readline()
            ada_in.close()
        events.wait_for("said", predicate=lambda e: e.args[0] == "[***] ada left")
        trace = events.trace
        assert trace is not None
        trace.detach()
    kept = []
    for record in trace.records:  # the harness's Recorder hears everything: not drawn
        record.handlers = [run for run in record.handlers if run.component != "Recorder"]
        if record.name not in ("registered", "started", "stopped", "signal", "ready"):
            kept.append(record)
    return sequence_mermaid(kept, last=None), sequence_svg(kept, last=None, title="chat")


def connex_states_dot() -> str:
    """The Connex state diagram, as DOT, from the table the Connex runs."""
    from netcomp.net import _connex  # the table is the module's rules, not an API

    edges: dict[tuple[str, str], list[str]] = {}
    for (state, name), (following, _actions) in _connex.TRANSITIONS.items():
        if state == following and name in ("demand", "enable", "disable", "close", "stop"):
            continue  # nothing happens: not drawn
        edges.setdefault((state, following), []).append(name)
    lines = [
        "digraph connex {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef5ff", fontname=Helvetica];',
        "  edge [fontname=Helvetica, fontsize=10];",
        '  start [shape=point]; start -> "idle-closed" [label="enabled=True"];',
        '  start -> disabled [label="enabled=False"];',
    ]
    for (state, following), names in sorted(edges.items()):
        lines.append(f'  "{state}" -> "{following}" [label="{", ".join(names)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def connex_states_mermaid() -> str:
    from netcomp.net import _connex

    lines = ["stateDiagram-v2", "  [*] --> idle_closed"]
    for (state, name), (following, _actions) in sorted(_connex.TRANSITIONS.items()):
        if state == following and name in ("demand", "enable", "disable", "close", "stop"):
            continue
        lines.append(f"  {state.replace('-', '_')} --> {following.replace('-', '_')}: {name}")
    return "\n".join(lines) + "\n"


def _add(files: Files, config: Any, path: str, content: str) -> None:
    from mkdocs.structure.files import File  # only the site build needs mkdocs

    files.append(File.generated(config, path, content=content))


def on_files(files: Files, config: Any) -> Files:
    from netcomp.testing import running
    from netcomp.tools import graph, render_svg

    have_dot = shutil.which("dot") is not None
    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
        modules = _tutorial_modules(Path(folder))
        app = modules["web"].build()
        description = graph(app)
        mermaid = description.to_mermaid()
        svg = description.to_svg() if have_dot else ""
        with running(app):  # its servers listen since they were made: close them cleanly
            pass
        _pictures["tutorial-graph"] = ("pictures/tutorial-graph.svg" if have_dot else "", mermaid)
        if have_dot:
            _add(files, config, "tutorial/pictures/tutorial-graph.svg", svg)
        mermaid, svg = _conversation(modules["chat"])
        _pictures["tutorial-sequence"] = ("pictures/tutorial-sequence.svg", mermaid)
        _add(files, config, "tutorial/pictures/tutorial-sequence.svg", svg)
    if have_dot:
        _add(files, config, "guides/pictures/connex-states.svg", render_svg(connex_states_dot()))
    _pictures["connex-states"] = (
        "pictures/connex-states.svg" if have_dot else "",
        connex_states_mermaid(),
    )
    for path in sorted((ROOT / "examples").glob("*.py")):
        _add(files, config, f"examples/{path.name}", path.read_text())
    for path in sorted((ROOT / "compat").glob("*.md")):
        _add(files, config, f"compat/{path.name}", path.read_text())
    return files


def _picture(match: re.Match[str]) -> str:
    name = match[1]
    if name not in _pictures:
        raise KeyError(f"no picture named {name!r} (known: {sorted(_pictures)})")
    svg, mermaid = _pictures[name]
    if svg:
        return f"![{name}]({svg})"
    return f"```mermaid\n{mermaid}```"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    markdown = PICTURE.sub(_picture, markdown)
    if "/" not in page.file.src_uri:  # a page at the top of docs/
        markdown = re.sub(r"\]\(\.\./(examples|compat)/", r"](\1/", markdown)
    elif page.file.src_uri.startswith("compat/"):
        markdown = markdown.replace("](../docs/", "](../")
    return markdown
