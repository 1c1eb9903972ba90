"""docs/pictures.md is what ``docs/build_pictures.py`` makes, never a hand edit: the build
runs here into a temporary folder, and its graphs must equal the committed ones (the
trace part changes from run to run: its times; it must be there, and parse)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TRACE_HEADING = "## examples/websocket_chat.py: a conversation, traced"


def test_the_pictures_page_is_what_the_build_makes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(DOCS / "build_pictures.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    built = (tmp_path / "pictures.md").read_text()
    committed = (DOCS / "pictures.md").read_text()
    assert built.split(TRACE_HEADING)[0] == committed.split(TRACE_HEADING)[0], (
        "docs/pictures.md is stale: run python docs/build_pictures.py"
    )
    for name in ("websocket_chat", "inspector"):
        for ext in ("mmd", "dot"):
            built_file = (tmp_path / "pictures" / f"{name}.{ext}").read_text()
            assert built_file == (DOCS / "pictures" / f"{name}.{ext}").read_text(), name
    trace = (tmp_path / "pictures" / "websocket_chat_trace.mmd").read_text()
    assert trace.startswith("sequenceDiagram\n") and "read(" in trace and "'hello bob'" in trace
    ET.fromstring((tmp_path / "pictures" / "websocket_chat_trace.svg").read_bytes())
    assert TRACE_HEADING in committed
