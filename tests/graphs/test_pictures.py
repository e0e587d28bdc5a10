"""Pictures that survive real documents: SVG text that converters keep, DOT that Graphviz
draws, scale, direction, legend, roles, run paths, and the README's picture kept current.

The Debian tools (``rsvg-convert``, ``pdftotext``, ``dot``) are installed by ``.ci/run``;
without them a test is skipped on a developer's machine and fails in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import pytest

from corral import InputError, load_team
from corral.graphs import draw_graph, team_graph
from tests.conftest import ROOT, SUPPORT_DESK, run_cli

RUNAWAY = ROOT / "examples" / "runaway" / "team.yaml"
PATH = ["intake", "triage", "billing", "refund_policy", "qa", "writer"]
SVG = "{http://www.w3.org/2000/svg}"
TAKEN = 'color="#2e7d32", penwidth=3.5'


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing; .ci/run installs it")
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return found


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def texts(svg: str) -> list[str]:
    """The words of each ``<text>`` element, in order."""
    return ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text")]


def dot_line(dot: str, a: str, b: str) -> str:
    return next(x for x in dot.splitlines() if x.strip().startswith(f'"{a}" -> "{b}"'))


def test_svg_labels_are_text_that_rsvg_keeps_in_png_and_pdf(tmp_path: Path) -> None:
    svg = str(load_team(SUPPORT_DESK).draw("svg", highlight=PATH))
    assert "<foreignObject" not in svg
    words = " ".join(texts(svg))
    for expected in ("Support triage lead", "Triage [category =", "refund_policy"):
        assert expected in words
    (tmp_path / "desk.svg").write_text(svg)
    convert = tool("rsvg-convert")
    subprocess.run([convert, "-o", "desk.png", "desk.svg"], cwd=tmp_path, check=True)
    width, height = png_size((tmp_path / "desk.png").read_bytes())
    assert width > 500
    assert height > 500
    subprocess.run([convert, "-f", "pdf", "-o", "desk.pdf", "desk.svg"], cwd=tmp_path, check=True)
    pdf = subprocess.run(
        [tool("pdftotext"), "desk.pdf", "-"], cwd=tmp_path, check=True, capture_output=True
    ).stdout.decode()
    text = " ".join(pdf.split())
    for expected in (
        "intake Intake rules function",
        "triage Support triage lead supervisor",
        "billing Billing specialist supervisor · budget",
        "Triage [category = billing] + reports to",
        "Legend",
        "taken in this run",
    ):
        assert expected in text, (expected, text)


def test_dot_is_drawn_by_graphviz_with_one_line_per_label_line() -> None:
    dot = str(load_team(SUPPORT_DESK).draw("dot"))
    drawn = subprocess.run(
        [tool("dot"), "-Tsvg"], input=dot.encode(), check=True, capture_output=True
    ).stdout.decode()
    words = texts(drawn)
    for line in ("intake", "Intake rules", "function", "Triage [category = billing]"):
        assert line in words, (line, words)
    assert "+ reports to" in words
    assert "+ delegates" not in words
    assert not [w for w in words if "\\" in w]


def test_scale_sizes_the_png_and_the_svg() -> None:
    team = load_team(RUNAWAY)
    one = png_size(bytes(team.draw("png", scale=1)))
    two = png_size(bytes(team.draw("png")))  # PNG's default is 2x
    assert abs(two[0] - 2 * one[0]) <= 2
    assert abs(two[1] - 2 * one[1]) <= 2
    svg = ET.fromstring(str(team.draw("svg", scale=1.5)))
    box = [float(v) for v in svg.attrib["viewBox"].split()]
    assert float(svg.attrib["width"]) == pytest.approx(box[2] * 1.5, abs=0.01)
    assert float(svg.attrib["height"]) == pytest.approx(box[3] * 1.5, abs=0.01)


def test_direction_lays_the_drawing_out_left_to_right() -> None:
    team = load_team(SUPPORT_DESK)
    assert "\nflowchart LR\n" in str(team.draw("mermaid", direction="LR"))
    assert "rankdir=LR;" in str(team.draw("dot", direction="LR"))
    svg = ET.fromstring(str(team.draw("svg", direction="LR", legend=False)))
    assert float(svg.attrib["width"]) > 2 * float(svg.attrib["height"])


def test_bad_options_are_input_errors() -> None:
    team = load_team(RUNAWAY)
    with pytest.raises(InputError, match="direction 'up' is not known"):
        team.draw("mermaid", direction="up")
    with pytest.raises(InputError, match="scale -1 is out of range"):
        team.draw("svg", scale=-1)
    with pytest.raises(InputError, match="unknown format 'gif'"):
        team.draw("gif")


def test_the_legend_explains_every_mark_and_can_be_left_out() -> None:
    team = load_team(RUNAWAY)
    mermaid = str(team.draw("mermaid"))
    legend = mermaid[mermaid.index("subgraph Legend") :]
    for words in ("supervisor", "flow: Schema [condition]", "delegates: supervisor"):
        assert words in legend
    assert "reached only by delegation" in legend  # the runaway team has such agents
    assert "reports to" not in legend  # ... and no link it cannot delegate over
    desk = str(load_team(SUPPORT_DESK).draw("mermaid"))
    legend = desk[desk.index("subgraph Legend") :]
    for words in ("+ reports to: agent", "reports to: hierarchy"):
        assert words in legend
    assert "delegates" not in legend
    assert "reached only by delegation" not in legend
    assert "taken in this run" not in legend
    assert "taken in this run" in str(team.draw("mermaid", highlight=["director"]))
    assert "Legend" not in str(team.draw("mermaid", legend=False))
    assert "subgraph cluster_legend" in str(team.draw("dot"))
    assert "cluster_legend" not in str(team.draw("dot", legend=False))


def test_nodes_show_their_id_role_and_marks() -> None:
    team = load_team(SUPPORT_DESK)
    mermaid = str(team.draw("mermaid"))
    assert 'billing["billing<br/>Billing specialist<br/>supervisor · budget"]' in mermaid
    assert 'writer["writer<br/>Reply writer"]' in mermaid
    dot = str(team.draw("dot"))
    assert (
        '"refund_policy" [label="refund_policy\\nRefund policy (deterministic)\\nfunction"' in dot
    )


def test_flow_edges_are_solid_and_no_pair_of_agents_is_joined_twice() -> None:
    team = load_team(SUPPORT_DESK)
    mermaid = str(team.draw("mermaid", legend=False))
    arrows = re.findall(r"^\t(\w+) (-->|-\.->|-\.-|==>)(?:\|[^|]*\|)? (\w+)$", mermaid, re.M)
    pairs = [(a, b) for a, _, b in arrows]
    assert len(pairs) == len(set(pairs)), "a pair of agents is joined twice"
    assert [(a, b) for a, link, b in arrows if link != "-->"] == [("triage", "qa")]
    assert "==>" not in mermaid
    dot = str(team.draw("dot", legend=False))
    dotted = [x for x in dot.splitlines() if "style=dotted" in x]
    assert dotted == [
        '  "triage" -> "qa" [label="reports to", style=dotted, arrowhead=none, color="#8a8a8a"];'
    ]


def test_the_support_desk_draws_no_delegation_its_supervisors_cannot_make() -> None:
    # Every report on the desk is fed by the flow, so no supervisor is offered delegate.
    team = load_team(SUPPORT_DESK)
    assert not [a.id for a in team.plan.agents.values() if a.delegates_to]
    mermaid = str(team.draw("mermaid", legend=False))
    assert "delegates" not in mermaid
    assert "-.->" not in mermaid
    assert 'triage -->|"Triage [category = billing]<br/>+ reports to"| billing' in mermaid
    assert 'triage -.-|"reports to"| qa' in mermaid
    dot = str(team.draw("dot", legend=False))
    assert "delegates" not in dot
    assert "style=dashed" not in dot
    kinds = {d["kind"] for _, _, d in team_graph(team.plan).edges(data=True)}
    assert kinds == {"flow", "reports_to"}


def test_a_report_reached_only_by_delegation_is_still_drawn_as_delegation(
    write: Callable[..., Path],
) -> None:
    team = load_team(
        write(
            "team.yaml",
            """\
            version: 1
            name: mixed
            schemas:
              Ask: {fields: {text: str}}
              Note: {fields: {text: str}}
            agents:
              - {id: lead, role: Lead, output: Note}
              - {id: checker, role: Checker, reports_to: lead, output: Note}
              - {id: clerk, role: Clerk, reports_to: lead, input: Ask, output: Note}
            flow:
              entry: lead
              input: Ask
              output: Note
              edges:
                - {from: lead, to: checker, schema: Note}
                - {from: checker, to: END, schema: Note}
            """,
        )
    )
    lead = team.plan.agent("lead")
    assert [r.id for r in lead.delegates_to] == ["clerk"]
    mermaid = str(team.draw("mermaid"))
    assert 'lead -.->|"delegates"| clerk' in mermaid
    assert 'lead -->|"Note<br/>+ reports to"| checker' in mermaid
    legend = mermaid[mermaid.index("subgraph Legend") :]
    assert "delegates: supervisor" in legend
    assert "+ reports to: agent" in legend
    assert "reports to: hierarchy" not in legend  # no such link is drawn
    dot = str(team.draw("dot", legend=False))
    assert dot_line(dot, "lead", "clerk").endswith('[label="delegates", style=dashed];')
    assert dot_line(dot, "lead", "checker").endswith('[label="Note\\n+ reports to"];')
    graph = nx.node_link_graph(json.loads(str(team.draw("json"))), edges="edges")
    kinds = {(a, b): d["kind"] for a, b, d in graph.edges(data=True) if d["kind"] != "flow"}
    assert kinds == {("lead", "checker"): "reports_to", ("lead", "clerk"): "delegates"}
    graphml = nx.parse_graphml(str(team.draw("graphml")))
    assert {d["kind"] for _, _, d in graphml.edges(data=True)} == {
        "flow",
        "delegates",
        "reports_to",
    }


def test_a_run_picture_highlights_the_edges_taken_and_keeps_supervisors_outlined() -> None:
    team = load_team(SUPPORT_DESK)
    mermaid = str(team.draw("mermaid", highlight=PATH, legend=False))
    assert "class intake,refund_policy,writer visited" in mermaid
    assert "class triage,billing,qa visitedsupervisor" in mermaid
    assert "classDef visitedsupervisor fill:#c8f7c5,stroke:#7a3e00,stroke-width:3px" in mermaid
    links = [x.strip() for x in mermaid.splitlines() if "-->" in x or "-.-" in x]
    styled = re.search(r"linkStyle ([\d,]+) stroke:#2e7d32", mermaid)
    assert styled is not None
    taken = [
        links[int(i)].split()[0] + ">" + links[int(i)].split()[-1] for i in styled[1].split(",")
    ]
    assert taken == [
        "__start__>intake",
        "intake>triage",
        "triage>billing",
        "billing>refund_policy",
        "refund_policy>qa",
        "qa>writer",
        "writer>__end__",
    ]
    dot = str(team.draw("dot", highlight=PATH, legend=False))
    assert TAKEN in dot_line(dot, "triage", "billing")
    assert TAKEN not in dot_line(dot, "triage", "technical")
    assert TAKEN not in dot_line(dot, "triage", "qa")
    triage = next(x for x in dot.splitlines() if x.strip().startswith('"triage" ['))
    assert 'fillcolor="#c8f7c5"' in triage
    assert 'color="#7a3e00", penwidth=3' in triage


def test_the_readme_picture_is_what_make_docs_draws_now(tmp_path: Path) -> None:
    drawn = run_cli("graph", SUPPORT_DESK, "--format", "svg", "-o", "desk.svg", cwd=tmp_path)
    assert drawn.code == 0, drawn.stderr
    committed = ROOT / "docs" / "support_desk.svg"
    assert (tmp_path / "desk.svg").read_text() == committed.read_text(), (
        "docs/support_desk.svg is out of date: run `make docs` and commit it"
    )
    assert "](docs/support_desk.svg)" in (ROOT / "README.md").read_text()


def test_the_picture_has_every_edge_langgraph_compiles() -> None:
    plan = load_team(SUPPORT_DESK).plan
    names = {"__start__": "START", "__end__": "END"}
    compiled = {
        (names.get(e.source, e.source), names.get(e.target, e.target))
        for e in draw_graph(plan).get_graph().edges
    }
    drawn = {(a, b) for a, b, d in team_graph(plan).edges(data=True) if d["kind"] == "flow"}
    assert drawn == compiled
