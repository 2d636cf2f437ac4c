"""The inspector's page, stylesheet and script: our own, small, nothing from a CDN.

Served as three resources so the page's Content-Security-Policy can forbid
inline script and style. The script builds every element with ``textContent``:
node names and trace ids come from programs and are never parsed as HTML.
"""

from __future__ import annotations

__all__ = ["CSP", "PAGE", "SCRIPT", "STYLE"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>PenguiFlow inspector</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="inspector.css">
<link rel="icon" href="data:,">
</head>
<body data-mode="{mode}">
<header><h1>PenguiFlow inspector</h1><span id="status" class="pill">connecting</span></header>
<main>
<section id="graph-section"><h2>Graph</h2><div id="graph-box">{svg}</div></section>
<section id="mailboxes-section"><h2>Mailboxes</h2>
<table id="mailboxes"><thead><tr><th>node</th><th>lane (from)</th><th>depth</th>
<th>capacity</th><th>busy</th></tr></thead><tbody></tbody></table></section>
<section id="supervision-section"><h2>Supervision</h2><div id="supervision"></div></section>
<section id="traces-section"><h2>Recent traces</h2>
<form id="lookup"><input id="lookup-id" placeholder="trace id" aria-label="trace id">
<button type="submit">Show</button></form>
<table id="traces"><thead><tr><th>trace</th><th>status</th><th>events</th><th>last</th>
<th></th></tr></thead><tbody></tbody></table></section>
<section id="parked-section"><h2>Parked traces</h2>
<p class="note" id="parked-empty">No trace waits in ctx.interrupt.</p>
<table id="parked"><thead><tr><th>trace</th><th>node</th><th>since (UTC)</th><th>payload</th>
<th></th></tr></thead><tbody></tbody></table></section>
<section id="timeline-section"><h2>Trace <span id="timeline-id"></span></h2>
<table id="timeline"><thead><tr><th>time</th><th>event</th><th>node</th><th>attempt</th>
<th>latency ms</th><th>detail</th></tr></thead><tbody></tbody></table></section>
</main>
<script src="inspector.js"></script>
</body>
</html>
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #111827; background: #f9fafb; }
header { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.2rem;
  background: #1f2937; color: #f9fafb; }
h1 { font-size: 1.15rem; margin: 0; }
h2 { font-size: 1rem; margin: .2rem 0 .6rem; }
main { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; padding: 1rem; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: .8rem;
  overflow: auto; }
#graph-section { grid-column: 1 / span 2; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pill { padding: .1rem .5rem; border-radius: 999px; font-size: .8rem; background: #6b7280; }
.pill.live { background: #059669; }
.pill.down { background: #b91c1c; }
.status-running { color: #2563eb; } .status-done { color: #059669; }
.status-failed { color: #b91c1c; } .status-cancelled { color: #92400e; }
.status-queued { color: #6b7280; } .status-parked { color: #7c3aed; }
pre.payload { margin: 0; max-height: 8rem; overflow: auto; white-space: pre-wrap;
  font-size: .8rem; background: #f3f4f6; padding: .2rem .4rem; border-radius: 4px; }
form.resume { display: flex; gap: .3rem; } form.resume input { width: 8rem; }
.note { color: #6b7280; font-size: .85rem; margin: .2rem 0; }
#parked-section { grid-column: 1 / span 2; }
tr.trace { cursor: pointer; } tr.trace:hover { background: #f3f4f6; }
.busy rect { stroke: #2563eb; stroke-width: 2.5; }
.backlog rect { fill: #fef3c7; }
ul.tree { list-style: none; padding-left: 1rem; margin: .2rem 0; font-size: .85rem; }
.state-running { color: #059669; } .state-restarting { color: #92400e; }
.state-stopped { color: #6b7280; }
button { font-size: .8rem; }
code { font-size: .8rem; }
"""

SCRIPT = r"""
"use strict";
(function () {
  const mode = document.body.dataset.mode;
  const statusPill = document.getElementById("status");
  let shown = null;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function cell(row, text, cls) { row.appendChild(el("td", text, cls)); }
  function nodeGroup(name) {
    for (const g of document.querySelectorAll("#graph g.node")) {
      if (g.dataset.node === name) return g;
    }
    return null;
  }

  function renderNodes(nodes) {
    const body = document.querySelector("#mailboxes tbody");
    body.replaceChildren();
    for (const n of nodes) {
      const g = nodeGroup(n.name);
      if (g) {
        const depth = g.querySelector("text.depth");
        depth.textContent = n.depth + " / " + (n.capacity > 0 ? n.capacity : "\u221e");
        g.classList.toggle("busy", Boolean(n.busy));
        g.classList.toggle("backlog", n.depth > 0);
      }
      const lanes = n.lanes.length ? n.lanes : [{source: "", depth: n.depth, capacity: n.capacity}];
      for (const lane of lanes) {
        const row = el("tr");
        row.dataset.node = n.name;
        cell(row, n.name);
        cell(row, lane.source);
        cell(row, lane.depth, "num depth");
        cell(row, lane.capacity > 0 ? lane.capacity : "\u221e", "num");
        cell(row, n.busy ? "yes" : "");
        body.appendChild(row);
      }
    }
  }

  function renderTree(tree) {
    const ul = el("ul", null, "tree");
    const head = el("li");
    head.appendChild(el("strong", tree.name));
    head.appendChild(document.createTextNode(" (" + tree.strategy + ")"));
    ul.appendChild(head);
    for (const child of tree.children) {
      const li = el("li");
      li.dataset.child = child.id;
      li.appendChild(el("span", child.id + " "));
      li.appendChild(el("span", child.state, "state-" + child.state));
      li.appendChild(el("span", " restarts: " + child.restarts, "restarts"));
      if (child.tree) li.appendChild(renderTree(child.tree));
      ul.appendChild(li);
    }
    return ul;
  }

  function renderSupervision(tree) {
    const box = document.getElementById("supervision");
    const idle = el("p", mode === "live" ? "not running" : "history only");
    box.replaceChildren(tree ? renderTree(tree) : idle);
  }

  function renderTraces(traces) {
    const body = document.querySelector("#traces tbody");
    body.replaceChildren();
    for (const t of traces) {
      const row = el("tr", null, "trace");
      row.dataset.trace = t.trace_id;
      row.appendChild(el("td")).appendChild(el("code", t.trace_id));
      cell(row, t.status, "status status-" + t.status);
      cell(row, t.events, "num");
      cell(row, (t.last_event || "") + (t.last_node ? " @ " + t.last_node : ""));
      const actions = el("td");
      const active = t.status === "running" || t.status === "queued" || t.status === "parked";
      if (mode === "live" && active) {
        const button = el("button", "Cancel", "cancel");
        button.addEventListener("click", function (event) {
          event.stopPropagation();
          cancel(t.trace_id, button);
        });
        actions.appendChild(button);
      }
      row.appendChild(actions);
      row.addEventListener("click", function () { showTrace(t.trace_id); });
      body.appendChild(row);
    }
  }

  function since(ts) {
    return ts === null || ts === undefined
      ? "before a restart" : new Date(ts * 1000).toISOString().slice(11, 19);
  }

  // Keyed by interrupt id, unlike the other tables: a row lives as long as its
  // interrupt waits, so a value being typed survives the stream's updates.
  function renderParked(parked) {
    const body = document.querySelector("#parked tbody");
    const rows = new Map();
    for (const row of body.children) rows.set(row.dataset.interrupt, row);
    const waiting = new Set(parked.map(function (p) { return p.id; }));
    for (const [id, row] of rows) if (!waiting.has(id)) row.remove();
    for (const p of parked) {
      if (rows.has(p.id)) continue;
      const row = el("tr", null, "parked");
      row.dataset.interrupt = p.id;
      row.dataset.trace = p.trace_id === null ? "" : p.trace_id;
      row.appendChild(el("td")).appendChild(el("code", p.trace_id));
      cell(row, p.node);
      cell(row, since(p.since));
      row.appendChild(el("td")).appendChild(el("pre", p.payload, "payload"));
      const actions = el("td");
      if (mode === "live") actions.appendChild(resumeForm(p.id));
      row.appendChild(actions);
      body.appendChild(row);
    }
    document.getElementById("parked-empty").hidden = parked.length > 0;
  }

  function resumeForm(id) {
    const form = el("form", null, "resume");
    const input = el("input", null, "value");
    input.value = "null";
    input.setAttribute("aria-label", "resume value (JSON)");
    input.title = "the value ctx.interrupt returns, as JSON";
    const button = el("button", "Resume", "resume");
    button.type = "submit";
    const note = el("span", null, "note");
    form.append(input, button, note);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      resume(id, input.value, button, note);
    });
    return form;
  }

  async function resume(id, text, button, note) {
    try { JSON.parse(text); } catch (_) { note.textContent = "not JSON"; return; }
    button.disabled = true;
    note.textContent = "";
    const url = "api/interrupts/" + encodeURIComponent(id) + "/resume";
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: {"X-Penguiflow-Inspector": "1", "Content-Type": "application/json"},
        body: text,
      });
    } catch (_) {
      note.textContent = "no answer from the server";
      button.disabled = false;
      return;
    }
    if (response.ok) { button.textContent = "resumed"; return; }
    const answer = await response.json().catch(function () { return {}; });
    const why = answer.error ? ": " + answer.error : "";
    note.textContent = "refused (" + response.status + ")" + why;
    button.disabled = response.status === 404 || response.status === 409;
  }

  function render(state) {
    renderNodes(state.nodes || []);
    renderSupervision(state.supervision);
    renderTraces(state.traces || []);
    renderParked(state.interrupts || []);
    if (shown) showTrace(shown, true);
  }

  async function cancel(traceId, button) {
    button.disabled = true;
    const url = "api/traces/" + encodeURIComponent(traceId) + "/cancel";
    const response = await fetch(url, {method: "POST", headers: {"X-Penguiflow-Inspector": "1"}});
    button.textContent = response.ok ? "cancelling" : "refused (" + response.status + ")";
  }

  async function showTrace(traceId, quiet) {
    shown = traceId;
    const response = await fetch("api/traces/" + encodeURIComponent(traceId));
    if (!response.ok) {
      if (!quiet) document.getElementById("timeline-id").textContent = traceId + " (unknown)";
      return;
    }
    const data = await response.json();
    document.getElementById("timeline-id").textContent = data.trace_id + " \u2014 " + data.status;
    const body = document.querySelector("#timeline tbody");
    body.replaceChildren();
    for (const e of data.events) {
      const row = el("tr");
      cell(row, new Date(e.ts * 1000).toISOString().slice(11, 23));
      cell(row, e.event);
      cell(row, e.node);
      cell(row, e.attempt, "num");
      const latency = e.latency_ms === null || e.latency_ms === undefined ? "" : e.latency_ms;
      cell(row, latency === "" ? "" : latency.toFixed(2), "num");
      cell(row, e.detail || "");
      body.appendChild(row);
    }
  }

  document.getElementById("lookup").addEventListener("submit", function (event) {
    event.preventDefault();
    const id = document.getElementById("lookup-id").value.trim();
    if (id) showTrace(id);
  });

  const stream = new EventSource("api/stream");
  stream.addEventListener("state", function (event) {
    statusPill.textContent = mode === "live" ? "live" : "history";
    statusPill.className = "pill live";
    render(JSON.parse(event.data));
  });
  stream.addEventListener("error", function () {
    statusPill.textContent = "disconnected";
    statusPill.className = "pill down";
  });
})();
"""
