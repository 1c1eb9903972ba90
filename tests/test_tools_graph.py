"""netcomp.tools: the component graph (DOT, SVG, Mermaid, JSON), traces drawn as sequence
diagrams (Mermaid, SVG), and ``netcomp graph`` on the command line.

Outputs are checked structurally: DOT parsed by pydot, Mermaid line by line against the
grammar rules netcomp writes, SVG parsed as XML. SVG of a graph comes from the real
Graphviz ``dot`` (``.ci/run`` installs it); without it ``GraphvizMissing`` says how to
get it (checked with a PATH that has no ``dot``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pydot
import pytest

with warnings.catch_warnings():
    # pydot's parser module uses pyparsing's camelCase names, deprecated in pyparsing 3.3:
    # the warning is pydot's, raised once when its grammar is built.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pydot.dot_parser

from netcomp import Component, Event, Manager, Trace, handler
from netcomp.tools import GraphvizMissing, graph, sequence_mermaid, sequence_svg

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (.ci/run installs it)"
)


class Greeter(Component):
    channel = "greet"

    def hello(self, name: str) -> str:
        return f"hello {name}"

    @handler("started", channel="*", priority=5)
    def _begin(self, manager: Any) -> None:
        pass


class Odd(Component):
    channel = 'we"ird#<chan>|'

    def hello(self, name: str) -> None:
        raise ValueError(f"no {name}")

    def exception(self, *args: Any, **kwargs: Any) -> None:
        pass


def build() -> Manager:
    manager = Manager()
    greeter = Greeter().register(manager)
    Greeter(channel="other").register(greeter)
    Odd().register(manager)
    return manager


# ----------------------------------------------------------------- description
def test_the_description_lists_components_handlers_and_channels() -> None:
    description = graph(build())
    assert [c.id for c in description.components] == ["c1", "c2", "c3", "c4"]
    assert [c.label for c in description.components] == ["Manager", "Greeter", "Greeter#2", "Odd"]
    assert [c.parent for c in description.components] == [None, "c1", "c2", "c1"]
    greeter = description.component("Greeter")
    assert greeter.cls == f"{__name__}.Greeter" and greeter.channel == "greet"
    names = {(h.names, h.channel, h.priority, h.method) for h in greeter.handlers}
    assert names == {
        (("hello",), "greet", 0, "Greeter.hello"),
        (("started",), "*", 5, "Greeter._begin"),
    }
    assert description.channels["greet"] == (("c2", ("hello",)),)
    assert description.channels["other"] == (("c3", ("hello",)),)
    assert description.channels["*"] == (("c2", ("started",)), ("c3", ("started",)))
    assert [c.id for c in description.children("c1")] == ["c2", "c4"]
    data = description.to_json()
    assert data["version"] == 1 and data["components"][1]["handlers"][0]["names"] == ["hello"]
    json.dumps(data)


def test_the_same_tree_gives_the_same_text() -> None:
    assert graph(build()).to_dot() == graph(build()).to_dot()
    assert graph(build()).to_mermaid() == graph(build()).to_mermaid()


def test_a_component_inside_the_tree_describes_the_whole_tree() -> None:
    manager = build()
    assert graph(manager.components[0]) == graph(manager)
    with pytest.raises(TypeError, match="component or a Manager"):
        graph("app")  # type: ignore[arg-type]


# ------------------------------------------------------------------------ DOT
def test_dot_parses_with_the_expected_nodes_and_edges() -> None:
    (parsed,) = pydot.graph_from_dot_data(graph(build()).to_dot())
    nodes = {n.get_name(): n for n in parsed.get_nodes()}
    assert {"c1", "c2", "c3", "c4"} <= set(nodes)
    assert "hello" in nodes["c2"].get("label") and "started @* p=5" in nodes["c2"].get("label")
    edges = [(e.get_source(), e.get_destination(), e.get("style")) for e in parsed.get_edges()]
    tree = {(s, d) for s, d, style in edges if style is None}
    assert tree == {("c1", "c2"), ("c2", "c3"), ("c1", "c4")}
    channel_nodes = {n: nodes[n].get("label") for n in nodes if n.startswith("ch")}
    assert '"we\\"ird#<chan>|"' in channel_nodes.values()
    dashed = {(s, d) for s, d, style in edges if style == "dashed"}
    assert len(dashed) == 5  # greet->c2, other->c3, *->c2, *->c3, odd->c4


# -------------------------------------------------------------------- Mermaid
MERMAID_LINE = [
    re.compile(r'^  c\d+\["[^"\n]*"\]$'),  # a component
    re.compile(r"^  c\d+ --> c\d+$"),  # the tree
    re.compile(r'^  ch\d+\(\["[^"\n]*"\]\)$'),  # a channel
    re.compile(r'^  ch\d+ -\.->\|"[^"|\n]*"\| c\d+$'),  # a channel's listener
    re.compile(r"^  classDef channel [^\n]+$"),
    re.compile(r"^  class (ch\d+,)*ch\d+ channel$"),
]


def test_mermaid_follows_the_flowchart_grammar() -> None:
    text = graph(build()).to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    for line in lines[1:]:
        assert any(rule.match(line) for rule in MERMAID_LINE), line
    assert "we#quot;ird#35;#lt;chan#gt;#124;" in text  # entity codes, nothing raw
    assert "  c1 --> c2" in lines and "  c2 --> c3" in lines


# ------------------------------------------------------------------------ SVG
@needs_dot
def test_svg_from_dot_is_xml_with_the_nodes() -> None:
    svg = graph(build()).to_svg()
    root = ET.fromstring(svg.encode())
    titles = {t.text for g in root.iter(f"{SVG}g") if g.get("class") == "node"
              for t in g.findall(f"{SVG}title")}  # fmt: skip
    assert {"c1", "c2", "c3", "c4"} <= titles
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Greeter#2" in texts


def test_without_dot_svg_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(GraphvizMissing, match="apt-get install graphviz"):
        graph(build()).to_svg()


# ----------------------------------------------------------------- sequences
def traced() -> Trace:
    manager = build()
    manager.flush()  # the registered events, before the trace begins
    with Trace().attach(manager) as trace:
        manager.fire(Event.create("hello", "ann"), "greet")
        manager.fire(Event.create("hello", "bob"), 'we"ird#<chan>|')
        manager.fire(Event.create("nobody"), "greet")
        manager.flush()
    return trace


TEXT = r"(?:[^\n;#]|#\w+;)*"  # no raw ';' or '#': only entity codes such as #lt;
SEQUENCE_LINE = [
    re.compile(rf'^  participant p\d+ as "{TEXT}"$'),
    re.compile(rf"^  p\d+->>p\d+: {TEXT}$"),
    re.compile(rf"^  p\d+-xp\d+: {TEXT}$"),
    re.compile(r"^  rect rgb\(\d+, \d+, \d+\)$"),
    re.compile(rf"^  Note over p\d+: {TEXT}$"),
    re.compile(r"^  end$"),
]


def test_a_trace_as_a_mermaid_sequence_diagram() -> None:
    text = sequence_mermaid(traced())
    lines = text.splitlines()
    assert lines[0] == "sequenceDiagram"
    for line in lines[1:]:
        assert any(rule.match(line) for rule in SEQUENCE_LINE), line
    participants = [line.split(" as ")[1] for line in lines if "participant" in line]
    assert participants == ['"Manager"', '"Greeter"', '"Odd"']
    assert re.search(r"p1->>p2: [\d.]+ ms hello\('ann'\)", text)
    assert re.search(r"p1-xp3: [\d.]+ ms hello\('bob'\)", text)  # the error: a cross
    assert "Note over p3: ERROR ValueError: no bob" in text
    assert re.search(r"p1->>p1: [\d.]+ ms nobody\(\) \(unhandled\)", text)
    assert lines.count("  end") == lines.count("  rect rgb(255, 210, 210)") == 1


def test_a_trace_as_svg_is_xml_with_lifelines_and_red_errors() -> None:
    svg = sequence_svg(traced(), title="three events")
    root = ET.fromstring(svg.encode())
    groups = list(root.iter(f"{SVG}g"))
    lifelines = [g.get("data-name") for g in groups if g.get("class") == "lifeline"]
    assert lifelines == ["Manager", "Greeter", "Odd"]
    events = [g for g in groups if (g.get("class") or "").startswith("event")]
    errors = [g for g in events if g.get("class") == "event error"]
    assert len(errors) == 1
    red = [t.text for t in errors[0].iter(f"{SVG}text") if t.get("fill") == "#c62828"]
    assert "hello('bob')" in red and "ERROR ValueError: no bob" in red
    labels = [t.text for g in events for t in g.iter(f"{SVG}text")]
    assert "hello('ann')" in labels and "nobody() (unhandled)" in labels
    times = [float(t.split()[0]) for t in labels if t and t.endswith(" ms")]
    assert times == sorted(times)  # time runs down
    ys = [float(g.find(f"{SVG}text").get("y")) for g in events]  # type: ignore[union-attr]
    assert ys == sorted(ys)


def test_a_long_trace_draws_its_last_events() -> None:
    manager = Manager()
    with Trace().attach(manager) as trace:
        for i in range(50):
            manager.fire(Event.create("tick", i))
        manager.flush()
    text = sequence_mermaid(trace, last=5)
    assert text.count("->>") == 5 and "tick(49)" in text and "tick(44)" not in text


# ------------------------------------------------------------------ the command
def netcomp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netcomp._cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def app_module(tmp_path: Path) -> Path:
    (tmp_path / "graphapp.py").write_text(
        "from netcomp import Component, Manager\n"
        "class Echo(Component):\n"
        "    channel = 'echo'\n"
        "    def say(self, text):\n"
        "        return text\n"
        "def make():\n"
        "    manager = Manager()\n"
        "    Echo().register(manager)\n"
        "    return manager\n"
    )
    return tmp_path


def test_the_command_writes_dot_mermaid_and_json(app_module: Path) -> None:
    done = netcomp("graph", "graphapp:make", cwd=app_module)
    assert done.returncode == 0, done.stderr
    (parsed,) = pydot.graph_from_dot_data(done.stdout)
    assert {"c1", "c2"} <= {n.get_name() for n in parsed.get_nodes()}
    assert netcomp("graph", "graphapp:make", "-o", "g.mmd", cwd=app_module).returncode == 0
    assert (app_module / "g.mmd").read_text().startswith("flowchart LR\n")
    assert netcomp("graph", "graphapp:make", "-o", "g.json", cwd=app_module).returncode == 0
    data = json.loads((app_module / "g.json").read_text())
    assert [c["label"] for c in data["components"]] == ["Manager", "Echo"]


@needs_dot
def test_the_command_writes_svg(app_module: Path) -> None:
    done = netcomp("graph", "graphapp:make", "-o", "app.svg", cwd=app_module)
    assert done.returncode == 0, done.stderr
    root = ET.fromstring((app_module / "app.svg").read_bytes())
    assert "Echo" in [t.text for t in root.iter(f"{SVG}text")]


def test_the_command_draws_a_saved_trace(app_module: Path) -> None:
    traced().save(app_module / "run.jsonl")
    done = netcomp("graph", "run.jsonl", "-o", "run.svg", cwd=app_module)
    assert done.returncode == 0, done.stderr
    ET.fromstring((app_module / "run.svg").read_bytes())
    done = netcomp("graph", "run.jsonl", cwd=app_module)
    assert done.stdout.startswith("sequenceDiagram\n")


def test_the_command_says_what_is_wrong(app_module: Path) -> None:
    done = netcomp("graph", "nosuchmodule:make", cwd=app_module)
    assert done.returncode == 2 and "cannot import 'nosuchmodule'" in done.stderr
    done = netcomp("graph", "missing.jsonl", cwd=app_module)
    assert done.returncode == 1 and "missing.jsonl" in done.stderr
    done = netcomp(
        "graph",
        "graphapp:make",
        "--format",
        "svg",
        cwd=app_module,
    )
    assert done.returncode in (0, 3)
