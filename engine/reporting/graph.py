"""A runbook's flow as a diagram (Mermaid or Graphviz DOT; graph_layout places it and
graph_svg draws it as a picture), for documentation and review.

Phases are clusters; steps run top to bottom; a step with `when` gets a decision node
whose "no" branch skips it; a detection step's `expect` can end the run as not
confirmed; rollbacks hang off the step they undo (dashed); included runbooks are
expanded as nested clusters (cycles and depth are guarded).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.language.duration import format_duration
from engine.language.model import BlockSpec, EndSpec, ManualSpec, NotifySpec, Runbook, Step, SwitchSpec, WaitSpec

from ._format import one_line

MAX_INCLUDE_DEPTH = 3


@dataclass
class Node:
    id: str
    label: str
    kind: str  # start | end | stop | decision | run | http | manual | wait | notify | set | include | rollback
    step: str | None = None  # the runbook's own step this node draws (not an included runbook's)


@dataclass
class Edge:
    src: str
    dst: str
    label: str = ""
    dashed: bool = False


@dataclass
class Cluster:
    id: str
    label: str
    nodes: list[str] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)


@dataclass
class Flow:
    title: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    top: Cluster = field(default_factory=lambda: Cluster("top", ""))


Exits = list[tuple[str, str]]  # (node id, label of the edge that leaves it)


class _Builder:
    def __init__(self, expand: bool, loader: Any) -> None:
        self.flow = Flow("")
        self.expand, self.loader = expand, loader
        self.used: set[str] = set()

    def node_id(self, raw: str) -> str:
        """A Mermaid- and DOT-safe id, unique in the diagram (`end` is a Mermaid keyword)."""
        base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", raw)
        ident, n = base, 1
        while ident in self.used:
            n += 1
            ident = f"{base}_{n}"
        self.used.add(ident)
        return ident

    def add(self, cluster: Cluster, raw: str, label: str, kind: str, step: str | None = None) -> str:
        ident = self.node_id(raw)
        self.flow.nodes[ident] = Node(ident, label, kind, step)
        cluster.nodes.append(ident)
        return ident

    def link(self, exits: Exits, dst: str) -> None:
        self.flow.edges.extend(Edge(src, dst, label) for src, label in exits)

    # -- a runbook --------------------------------------------------------------------------

    def runbook(self, book: Runbook, cluster: Cluster, exits: Exits, prefix: str, seen: tuple[str, ...]) -> Exits:
        for phase in book.phases:
            sub = Cluster(self.node_id(f"{prefix}phase_{phase.name}"), phase.name)
            cluster.clusters.append(sub)
            for step in phase.steps:
                exits = self.step(book, step, sub, exits, prefix, seen)
        return exits

    def step(self, book: Runbook, step: Step, cluster: Cluster, exits: Exits, prefix: str,
             seen: tuple[str, ...]) -> Exits:
        skip: Exits = []
        if step.when:
            decision = self.add(cluster, f"{prefix}when_{step.id}", f"when {step.when}", "decision")
            self.link(exits, decision)
            exits, skip = [(decision, "yes")], [(decision, "no")]
        # An `end:` step is a step like any other; the outcome it leads to is the end node.
        ident = self.add(cluster, prefix + step.id, _label(book, step), "ending" if step.kind == "end" else step.kind,
                         None if prefix else step.id)
        self.link(exits, ident)
        out: Exits = [(ident, "")]
        if step.kind == "include" and self.expand:
            out = self.include(book, step, ident, cluster, prefix, seen)
        elif isinstance(step.spec, EndSpec):
            self.flow.edges.append(Edge(ident, self.stop(step.spec.outcome), "ends the run"))
            out = []
        elif step.kind in ("block", "switch"):
            out = self.branches(book, step, ident, cluster, prefix, seen)
        out += self.refusal(book, step, ident, cluster, prefix, seen)
        if step.phase == "detection" and step.expect and not prefix:
            self.flow.edges.append(Edge(ident, self.not_confirmed(), "expect false", dashed=True))
        self.rollbacks(book, step, ident, cluster, prefix)
        return out + skip

    def branches(self, book: Runbook, step: Step, ident: str, cluster: Cluster, prefix: str,
                 seen: tuple[str, ...]) -> Exits:
        """A block's steps, or a switch's cases (each from the switch, labelled), each in a
        frame of its own; a switch without `default:` may also run nothing."""
        out: Exits = []
        for label, steps in step.branches():
            if label == "on refuse":
                continue
            exits: Exits = [(ident, "" if label == "block" else label)]
            title = f"{step.id}: {_items(step) if step.for_each is not None else 'block'}" \
                if label == "block" else f"{step.id}: {label}"
            exits = self.chain(book, steps, title, cluster, exits, prefix, seen)
            out += exits
        if isinstance(step.spec, SwitchSpec) and not step.spec.default:
            out.append((ident, "no case"))
        return out

    def refusal(self, book: Runbook, step: Step, ident: str, cluster: Cluster, prefix: str,
                seen: tuple[str, ...]) -> Exits:
        """Where a refused approval leads, when `on_refuse:` says."""
        refuse = step.confirm.on_refuse if step.confirm is not None else None
        if refuse is None:
            return []
        if refuse.end is not None:
            self.flow.edges.append(Edge(ident, self.stop(refuse.end.outcome), "refused", dashed=True))
            return []
        if refuse.steps:
            return self.chain(book, refuse.steps, f"{step.id}: on refuse", cluster, [(ident, "refused")], prefix,
                              seen)
        return [(ident, "refused: skipped")]

    def chain(self, book: Runbook, steps: tuple[Step, ...], title: str, cluster: Cluster, exits: Exits,
              prefix: str, seen: tuple[str, ...]) -> Exits:
        sub = Cluster(self.node_id(f"{prefix}{title}"), title)
        cluster.clusters.append(sub)
        for inner in steps:
            exits = self.step(book, inner, sub, exits, prefix, seen)
        return exits

    def rollbacks(self, book: Runbook, step: Step, ident: str, cluster: Cluster, prefix: str) -> None:
        src, label = ident, "on failure, undo"
        for undo in step.rollback:
            node = self.add(cluster, f"{prefix}undo_{undo.id}", _label(book, undo), "rollback",
                            None if prefix else undo.id)
            self.flow.edges.append(Edge(src, node, label, dashed=True))
            src, label = node, ""

    def include(self, book: Runbook, step: Step, ident: str, cluster: Cluster, prefix: str,
                seen: tuple[str, ...]) -> Exits:
        path = str((Path(book.file).parent / getattr(step.spec, "runbook", "")).resolve())
        if path in seen or len(seen) > MAX_INCLUDE_DEPTH:
            return [(ident, "")]
        try:
            child = self.loader(path)
        except Exception:  # an unloadable include is drawn as its node only
            return [(ident, "")]
        sub = Cluster(self.node_id(f"{prefix}{step.id}_runbook"), f"{step.id}: {child.title} ({child.id})")
        cluster.clusters.append(sub)
        return self.runbook(child, sub, [(ident, "")], f"{prefix}{step.id}/", (*seen, path))

    def not_confirmed(self) -> str:
        return self.stop("not_confirmed")

    def stop(self, outcome: str) -> str:
        """The node of a way the run ends before `resolved` (one per outcome)."""
        ident = f"n_end_{outcome}"
        if ident not in self.flow.nodes:
            self.used.add(ident)
            self.flow.nodes[ident] = Node(ident, outcome.replace("_", " "), "end" if outcome == "resolved" else "stop")
            self.flow.top.nodes.append(ident)
        return ident


def _label(book: Runbook, step: Step) -> str:
    """The step id, its title, and what kind of step it is (with the notable options)."""
    lines = [step.id]
    if step.title:
        lines.append(one_line(step.title, 500))  # whole: the SVG's tooltip shows it; boxes wrap or cut it
    lines.append(_kind_text(book, step))
    return "\n".join(lines)


def _kind_text(book: Runbook, step: Step) -> str:
    spec = step.spec
    parts = [step.kind]
    target = step.target or (book.defaults.target if step.kind == "run" else None)
    if target:
        parts.append(f"on {target}")
    if isinstance(spec, ManualSpec) and spec.ask:
        parts.append("asks " + ", ".join(f.name for f in spec.ask))
    if isinstance(spec, NotifySpec):
        parts.append(f"to {spec.channel}")
    if isinstance(spec, WaitSpec):
        parts.append(format_duration(spec.seconds))
    if isinstance(spec, SwitchSpec):
        parts.append(f"on {spec.on}")
    if isinstance(spec, EndSpec):
        parts.append(spec.outcome)
    if isinstance(spec, BlockSpec) and spec.background:
        parts.append("with " + ", ".join(h.id for h in spec.background) + " in the background")
    if step.role:
        parts.append(f"({step.role})")
    polls = f"until, every {format_duration(step.every)}" if step.every else "until"
    extras = [f"confirm{' by ' + step.confirm.role if step.confirm.role else ''}" if step.confirm else "",
              f"retries {step.retries.attempts}" if step.retries and step.retries.attempts > 1 else "",
              polls if step.until else "",
              "for each" if step.for_each is not None else "", "destructive" if step.destructive else ""]
    extra = ", ".join(e for e in extras if e)
    return " ".join(parts) + (f"; {extra}" if extra else "")


def _items(step: Step) -> str:
    """How a block's items run: one at a time unless `parallel` or `serial` says."""
    if step.parallel is None and step.serial is None:
        return "for each item"
    how = [f"{step.parallel} at a time" if step.parallel else "", f"in batches of {step.serial}" if step.serial else ""]
    return "for each item, " + ", ".join(h for h in how if h)


def build_graph(book: Runbook, *, expand_includes: bool = True, loader: Any = None) -> Flow:
    """The flow of a runbook, from the alert to `resolved`."""
    if loader is None:
        from engine.language.validation import load_runbook as loader
    builder = _Builder(expand_includes, loader)
    flow = builder.flow
    flow.title = f"{book.title} ({book.id})"
    alerts = ", ".join(book.alerts)
    start = builder.add(flow.top, "start", f"alert{': ' + alerts if alerts else ''}", "start")
    exits = builder.runbook(book, flow.top, [(start, "")], "", (str(Path(book.file).resolve()),))
    end = builder.add(flow.top, "resolved", "resolved", "end")
    builder.link(exits, end)
    return flow


# -- Mermaid ----------------------------------------------------------------------------------

_MERMAID_SHAPES = {"start": '(["{}"])', "end": '(["{}"])', "stop": '(["{}"])', "decision": '{{"{}"}}',
                   "manual": '[/"{}"/]', "include": '[["{}"]]', "notify": '>"{}"]', "wait": '(("{}"))',
                   "rollback": '["{}"]'}
_MERMAID_CLASSES = {
    "start": "fill:#e8f0fb,stroke:#3568a8", "end": "fill:#e6f4ea,stroke:#1e7a3c", "stop": "fill:#fdecea,stroke:#c0392b",
    "decision": "fill:#fff8e1,stroke:#b88a00", "manual": "fill:#fff5d6,stroke:#b88a00",
    "rollback": "fill:#f1eaf8,stroke:#7a52a8,stroke-dasharray:4 3", "include": "fill:#eef3fa,stroke:#3568a8",
}


def mermaid_text(text: str) -> str:
    """Label text for Mermaid: quotes and markup as entity codes, lines as <br/>."""
    out = "".join(f"#{ord(c)};" if c in '"<>#&`' else c for c in text)
    return "<br/>".join(one_line(line, 120) for line in out.split("\n"))


def _mermaid_cluster(flow: Flow, cluster: Cluster, indent: str) -> list[str]:
    lines = []
    for ident in cluster.nodes:
        node = flow.nodes[ident]
        shape = _MERMAID_SHAPES.get(node.kind, '["{}"]')
        lines.append(f"{indent}{ident}{shape.format(mermaid_text(node.label))}")
    for sub in cluster.clusters:
        lines.append(f'{indent}subgraph {sub.id}["{mermaid_text(sub.label)}"]')
        lines.append(f"{indent}    direction TB")
        lines += _mermaid_cluster(flow, sub, indent + "    ")
        lines.append(f"{indent}end")
    return lines


def render_mermaid(flow: Flow) -> str:
    lines = ["---", f"title: {json.dumps(flow.title)}", "---", "flowchart TD"]
    lines += _mermaid_cluster(flow, flow.top, "    ")
    for e in flow.edges:
        arrow = "-.->" if e.dashed else "-->"
        label = f'|"{mermaid_text(e.label)}"|' if e.label else ""
        lines.append(f"    {e.src} {arrow}{label} {e.dst}")
    for kind, style in _MERMAID_CLASSES.items():
        members = [n.id for n in flow.nodes.values() if n.kind == kind]
        if members:  # class names prefixed: `end` is a Mermaid keyword
            lines.append(f"    classDef rb_{kind} {style}")
            lines.append(f"    class {','.join(members)} rb_{kind}")
    return "\n".join(lines) + "\n"


# -- Graphviz DOT -----------------------------------------------------------------------------

_DOT_SHAPES = {"start": "oval", "end": "oval", "stop": "oval", "decision": "diamond", "manual": "parallelogram",
               "include": "component", "notify": "cds", "wait": "circle", "rollback": "box"}
_DOT_FILL = {"start": "#e8f0fb", "end": "#e6f4ea", "stop": "#fdecea", "decision": "#fff8e1", "manual": "#fff5d6",
             "rollback": "#f1eaf8", "include": "#eef3fa"}


def dot_text(text: str) -> str:
    """A DOT double-quoted string's content: backslashes and quotes escaped, \\n for lines."""
    lines = [one_line(line, 120).replace("\\", "\\\\").replace('"', '\\"') for line in text.split("\n")]
    return "\\n".join(lines)


def _dot_cluster(flow: Flow, cluster: Cluster, indent: str) -> list[str]:
    lines = []
    for ident in cluster.nodes:
        node = flow.nodes[ident]
        shape = _DOT_SHAPES.get(node.kind, "box")
        style = ("rounded,filled" if shape == "box" else "filled") + (",dashed" if node.kind == "rollback" else "")
        lines.append(f'{indent}{ident} [label="{dot_text(node.label)}", shape={shape}, '
                     f'style="{style}", fillcolor="{_DOT_FILL.get(node.kind, "#ffffff")}"];')
    for sub in cluster.clusters:
        lines.append(f"{indent}subgraph cluster_{sub.id} {{")
        lines.append(f'{indent}    label="{dot_text(sub.label)}"; style="rounded"; color="#9aa5b1";')
        lines += _dot_cluster(flow, sub, indent + "    ")
        lines.append(f"{indent}}}")
    return lines


def render_dot(flow: Flow) -> str:
    lines = ["digraph runbook {",
             f'    graph [rankdir=TB, label="{dot_text(flow.title)}", labelloc=t, fontname="Helvetica"];',
             '    node [fontname="Helvetica", fontsize=10];', '    edge [fontname="Helvetica", fontsize=9];']
    lines += _dot_cluster(flow, flow.top, "    ")
    for e in flow.edges:
        attrs = [f'label="{dot_text(e.label)}"'] if e.label else []
        attrs += ["style=dashed"] if e.dashed else []
        lines.append(f"    {e.src} -> {e.dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    return "\n".join(lines + ["}"]) + "\n"
