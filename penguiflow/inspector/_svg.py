"""The flow graph as SVG, laid out and drawn by the server (no client library)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["BOX_H", "BOX_W", "graph_svg", "layers"]

BOX_W = 170
BOX_H = 58
_GAP_X = 70
_GAP_Y = 26
_PAD = 20


def layers(names: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Column of each node: longest path from a source, back edges ignored."""
    succ: dict[str, list[str]] = {name: [] for name in names}
    for source, target in edges:
        if source != target:
            succ.setdefault(source, []).append(target)
    # Depth-first order, dropping edges that close a cycle, gives a DAG.
    state: dict[str, int] = {}
    order: list[str] = []
    dag: dict[str, list[str]] = {name: [] for name in succ}

    def visit(start: str) -> None:
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            node, index = stack.pop()
            targets = succ.get(node, [])
            if index < len(targets):
                stack.append((node, index + 1))
                nxt = targets[index]
                mark = state.get(nxt, 0)
                if mark == 0:
                    dag[node].append(nxt)
                    state[nxt] = 1
                    stack.append((nxt, 0))
                elif mark == 2:
                    dag[node].append(nxt)
            else:
                state[node] = 2
                order.append(node)

    for name in succ:
        if state.get(name, 0) == 0:
            visit(name)
    column = dict.fromkeys(succ, 0)
    for node in reversed(order):  # a topological order of the DAG
        for nxt in dag[node]:
            column[nxt] = max(column[nxt], column[node] + 1)
    return column


def graph_svg(
    names: Sequence[str],
    edges: Sequence[tuple[str, str]],
    *,
    capacities: dict[str, int] | None = None,
) -> str:
    """An SVG of the graph; each node's depth text has ``data-depth="<name>"``.

    Names are escaped; the page script finds nodes by their ``data-node`` attribute.
    """
    capacities = capacities or {}
    column = layers(names, edges)
    rows: dict[int, int] = {}
    position: dict[str, tuple[int, int]] = {}
    for name in names:
        col = column.get(name, 0)
        row = rows.get(col, 0)
        rows[col] = row + 1
        position[name] = (
            _PAD + col * (BOX_W + _GAP_X),
            _PAD + row * (BOX_H + _GAP_Y),
        )
    width = _PAD * 2 + (max(column.values(), default=0) + 1) * (BOX_W + _GAP_X) - _GAP_X
    height = _PAD * 2 + max(rows.values(), default=1) * (BOX_H + _GAP_Y) - _GAP_Y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="graph" role="img" '
        f'aria-label="flow graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#6b7280"/></marker></defs>',
    ]
    for source, target in edges:
        if source not in position or target not in position:
            continue
        sx, sy = position[source]
        tx, ty = position[target]
        if source == target:
            x, y = sx + BOX_W - 30, sy
            parts.append(
                f'<path class="edge" d="M {x} {y} C {x} {y - 30}, {x + 40} {y - 30}, '
                f'{x + 30} {y}" fill="none" stroke="#6b7280" marker-end="url(#arrow)"/>'
            )
            continue
        x1, y1 = sx + BOX_W, sy + BOX_H // 2
        x2, y2 = tx, ty + BOX_H // 2
        if tx <= sx:  # a back edge: route it below the boxes
            x1, y1, x2, y2 = sx + BOX_W // 2, sy + BOX_H, tx + BOX_W // 2, ty + BOX_H
            bend = max(y1, y2) + _GAP_Y
            path = f"M {x1} {y1} C {x1} {bend}, {x2} {bend}, {x2} {y2}"
        else:
            mid = (x1 + x2) // 2
            path = f"M {x1} {y1} C {mid} {y1}, {mid} {y2}, {x2} {y2}"
        parts.append(
            f'<path class="edge" d="{path}" fill="none" stroke="#6b7280" marker-end="url(#arrow)"/>'
        )
    for name in names:
        x, y = position[name]
        label = escape(name, quote=True)
        endpoint = name in ("OpenSea", "Rookery")
        fill = "#eef2ff" if endpoint else "#ffffff"
        capacity = capacities.get(name)
        depth_text = "" if capacity is None else f"0 / {capacity or '∞'}"
        parts.append(
            f'<g class="node" data-node="{label}" transform="translate({x},{y})">'
            f'<rect width="{BOX_W}" height="{BOX_H}" rx="8" fill="{fill}" stroke="#374151"/>'
            f'<text x="{BOX_W // 2}" y="22" text-anchor="middle" font-weight="600" '
            f'font-size="14">{label}</text>'
            f'<text class="depth" data-depth="{label}" x="{BOX_W // 2}" y="44" '
            f'text-anchor="middle" font-size="12" fill="#374151">{depth_text}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)
