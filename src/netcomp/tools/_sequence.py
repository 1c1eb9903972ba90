"""A recorded trace as a sequence diagram: Mermaid text, or SVG drawn here (no tool needed).

Rules (docs/tools.md, "Traces"):
* Lifelines are components (the trace's names: ``Class``, ``Class#2``; ``loop`` for the
  loop's own events), in order of first appearance.
* An event is an arrow from the component that fired it to each component whose handler
  ran (at most ``MAX_TARGETS``, then ``+N more``); nobody handling it is an arrow to
  itself marked ``(unhandled)``. The label is ``name(args)``, arguments shortened; a
  thread other than the loop's is named.
* An event whose handler raised is red (the arrow to the failing handler's component,
  and its label), with the error.
* Time runs down the vertical axis: each arrow sits below the previous one by a gap that
  grows with the time between them (logarithmically, so a long idle does not make a
  page of nothing), and the time of each is written on the left.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from xml.sax.saxutils import escape

from ..core import Trace, TraceRecord
from ._mermaid import mermaid_text

__all__ = ["MAX_TARGETS", "Arrow", "arrows", "sequence_mermaid", "sequence_svg"]

#: Arrows drawn per event; further handlers' components are counted in the label.
MAX_TARGETS = 8
_LABEL = 60  # characters of an arrow's label


class Arrow:
    """One arrow of the diagram: ``source`` to ``target`` at ``time`` (seconds since the
    trace began), ``label``, and ``error`` (text) when it is red."""

    __slots__ = ("error", "label", "seq", "source", "target", "time")

    def __init__(
        self, seq: int, source: str, target: str, time: float, label: str, error: str | None
    ) -> None:
        self.seq = seq
        self.source = source
        self.target = target
        self.time = time
        self.label = label
        self.error = error

    def __repr__(self) -> str:
        return f"<Arrow #{self.seq} {self.source} -> {self.target} {self.label!r}>"


def _records(trace: Trace | Iterable[TraceRecord], last: int | None) -> list[TraceRecord]:
    records = trace.records if isinstance(trace, Trace) else list(trace)
    return records[-last:] if last else records


def arrows(trace: Trace | Iterable[TraceRecord], last: int | None = 200) -> list[Arrow]:
    """The arrows of the last ``last`` records (``None``: all), in time order."""
    out: list[Arrow] = []
    for record in _records(trace, last):
        label = f"{record.name}({record.args})"
        if len(label) > _LABEL:
            label = label[: _LABEL - 4] + "...)"
        if record.thread:
            label += f" [thread {record.thread}]"
        targets: dict[str, str | None] = {}
        for run in record.handlers:
            if run.component not in targets or run.error:
                targets[run.component] = run.error
        if not targets:
            suffix = " (unhandled)" if not record.handled else ""
            out.append(
                Arrow(record.seq, record.source, record.source, record.start, label + suffix, None)
            )
            continue
        shown = list(targets.items())[:MAX_TARGETS]
        hidden = len(targets) - len(shown) + record.more_handlers
        for index, (target, error) in enumerate(shown):
            text = label
            if hidden and index == len(shown) - 1:
                text += f" +{hidden} more"
            if error is None and record.error and index == len(shown) - 1:
                error = record.error  # failed later (a coroutine): show it on the last
            out.append(Arrow(record.seq, record.source, target, record.start, text, error))
    return out


def _lifelines(items: list[Arrow]) -> list[str]:
    names: dict[str, None] = {}
    for arrow in items:
        names.setdefault(arrow.source)
        names.setdefault(arrow.target)
    return list(names)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def sequence_mermaid(trace: Trace | Iterable[TraceRecord], last: int | None = 200) -> str:
    """A Mermaid ``sequenceDiagram`` of the trace's last ``last`` records."""
    items = arrows(trace, last)
    ids = {name: f"p{i}" for i, name in enumerate(_lifelines(items), 1)}
    lines = ["sequenceDiagram"]
    lines += [f'  participant {pid} as "{mermaid_text(name)}"' for name, pid in ids.items()]
    for arrow in items:
        text = mermaid_text(f"{_ms(arrow.time)} {arrow.label}")
        source, target = ids[arrow.source], ids[arrow.target]
        if arrow.error is None:
            lines.append(f"  {source}->>{target}: {text}")
            continue
        lines.append("  rect rgb(255, 210, 210)")
        lines.append(f"  {source}-x{target}: {text}")
        lines.append(f"  Note over {target}: {mermaid_text('ERROR ' + arrow.error)}")
        lines.append("  end")
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------- SVG
_COLUMN = 190  # pixels between lifelines
_LEFT = 110  # the time axis
_TOP = 60  # below the lifeline heads
_GAP = 26  # pixels between two arrows at the same time
_RED = "#c62828"


def _rows(items: list[Arrow]) -> list[float]:
    """The y of each arrow: later in time is lower, by a gap growing with the log of the
    time between them."""
    ys: list[float] = []
    y = float(_TOP + 20)
    previous: float | None = None
    for arrow in items:
        if previous is not None:
            elapsed_ms = max(arrow.time - previous, 0.0) * 1000
            y += _GAP + 12 * math.log10(1 + elapsed_ms)
        ys.append(y)
        previous = arrow.time
    return ys


def sequence_svg(
    trace: Trace | Iterable[TraceRecord], last: int | None = 200, title: str = "netcomp trace"
) -> str:
    """An SVG sequence diagram of the trace's last ``last`` records (see the rules)."""
    items = arrows(trace, last)
    names = _lifelines(items)
    xs = {name: float(_LEFT + 90 + i * _COLUMN) for i, name in enumerate(names)}
    ys = _rows(items)
    height = int((ys[-1] if ys else _TOP) + 50)
    width = int(_LEFT + 90 + max(len(names), 1) * _COLUMN)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" '
        'font-size="11">',
        f"<title>{escape(title)}</title>",
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#333"/></marker>',
        '<marker id="arrow-error" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        f'markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        f'fill="{_RED}"/></marker>',
        "</defs>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-weight="bold">{escape(title)}</text>',
        f'<text x="10" y="{_TOP - 8}" fill="#666">time</text>',
    ]
    for name, x in xs.items():
        out.append(
            f'<g class="lifeline" data-name="{escape(name, {chr(34): "&quot;"})}">'
            f'<rect x="{x - 80}" y="{_TOP - 30}" width="160" height="24" rx="4" '
            'fill="#e8eef7" stroke="#4a6fa5"/>'
            f'<text x="{x}" y="{_TOP - 14}" text-anchor="middle">{escape(name)}</text>'
            f'<line x1="{x}" y1="{_TOP - 6}" x2="{x}" y2="{height - 20}" stroke="#999" '
            'stroke-dasharray="4 3"/></g>'
        )
    for arrow, y in zip(items, ys, strict=True):
        out.append(_svg_arrow(arrow, xs, y))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _svg_arrow(arrow: Arrow, xs: dict[str, float], y: float) -> str:
    color = _RED if arrow.error else "#333"
    marker = "arrow-error" if arrow.error else "arrow"
    x1, x2 = xs[arrow.source], xs[arrow.target]
    cls = "event error" if arrow.error else "event"
    parts = [
        f'<g class="{cls}" data-seq="{arrow.seq}">',
        f'<text x="10" y="{y + 4:.1f}" fill="#666">{_ms(arrow.time)}</text>',
    ]
    if x1 == x2:
        path = f"M {x1} {y - 8:.1f} h 30 v 16 h -30"
        parts.append(
            f'<path d="{path}" fill="none" stroke="{color}" marker-end="url(#{marker})"/>'
        )
        tx, anchor = x1 + 36, "start"
    else:
        parts.append(
            f'<line x1="{x1}" y1="{y:.1f}" x2="{x2}" y2="{y:.1f}" stroke="{color}" '
            f'marker-end="url(#{marker})"/>'
        )
        tx, anchor = (x1 + x2) / 2, "middle"
    parts.append(
        f'<text x="{tx:.1f}" y="{y - 4:.1f}" text-anchor="{anchor}" fill="{color}">'
        f"{escape(arrow.label)}</text>"
    )
    if arrow.error:
        parts.append(
            f'<text x="{x2 + 6:.1f}" y="{y + 12:.1f}" fill="{_RED}">'
            f"{escape('ERROR ' + arrow.error)}</text>"
        )
    parts.append("</g>")
    return "".join(parts)
