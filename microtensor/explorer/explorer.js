// The microtensor graph explorer: lays out the open part of a graph and shows node details.
//
// The page holds every node of the graph (explore.py writes them as JSON, parents first).
// Nodes are grouped by layer (node.layer) and, inside a layer, by time step (node.step).
// What is drawn is a tree of boxes: the whole graph is an open group; an open group shows
// its children (closed groups and nodes), laid out left to right in layers of rank; a
// closed group is one box. Only open groups are laid out, so a 3,000-node model opens at
// its handful of layers in milliseconds, and "open all" lays out every node.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("explorer-data").textContent);
  const NODES = DATA.nodes;
  const ANY_GRAD = NODES.some((n) => n.grad);
  const svg = document.getElementById("canvas");
  const viewport = document.getElementById("viewport");
  const panel = document.getElementById("panel");

  // Sizes of the drawing, in SVG units (pixels at zoom 1).
  const CHAR = 6.4, NODE_H = 36, GROUP_H = 44, PAD = 14, HEADER = 24;
  const COL_GAP = 40, ROW_GAP = 44, MEMBER_GAP = 14, MAX_ZOOM = 1.6, FAN = 6, STUB = 16;
  const WRAP_WIDTH = 1400, MAX_ITEMS = 200;

  // -- the tree of groups ---------------------------------------------------------------
  // Keys: "" is the whole graph, "L<layer>" a layer, "S<layer>|<step>" a step, "n<i>" node i.
  const groups = new Map();
  const chains = [];  // chains[i]: "", the groups holding node i (outermost first), "n<i>"

  function group(key, kind, layer, step, parent, first) {
    let g = groups.get(key);
    if (!g) {
      g = {key, kind, layer, step, parent, first, children: [], ops: 0, names: [],
           edges: new Set()};
      groups.set(key, g);
      if (parent !== null) groups.get(parent).children.push(key);
    }
    return g;
  }

  group("", "graph", null, null, null, 0);
  NODES.forEach((n, i) => {
    const chain = [""];
    if (n.layer != null) chain.push(group("L" + n.layer, "layer", n.layer, null, "", i).key);
    if (n.step != null) {
      const key = "S" + (n.layer == null ? "" : n.layer) + "|" + n.step;
      chain.push(group(key, "step", n.layer, n.step, chain[chain.length - 1], i).key);
    }
    groups.get(chain[chain.length - 1]).children.push("n" + i);
    chains.push(chain);
    if (n.kind === "op" || n.kind === "output") {  // a group's place: where its ops start
      for (const key of chain) if (groups.get(key).firstOp === undefined) groups.get(key).firstOp = i;
    }
  });
  function first(key) {
    if (key[0] === "n") return +key.slice(1);
    const g = groups.get(key);
    return g.firstOp === undefined ? g.first : g.firstOp;
  }
  for (const g of groups.values()) g.children.sort((a, b) => first(a) - first(b));

  // A group of more than MAX_ITEMS items (a hand-written loop of 10,000 ops without
  // mt.scope) is split into parts of consecutive items, and parts into parts, so that no
  // open box ever lays out more than MAX_ITEMS items at once.
  const partOf = new Map();
  const worklist = [...groups.values()];
  while (worklist.length) {
    const g = worklist.pop();
    if (g.children.length <= MAX_ITEMS) continue;
    let size = MAX_ITEMS;
    while (Math.ceil(g.children.length / size) > MAX_ITEMS) size *= MAX_ITEMS;
    const parts = [];
    for (let start = 0; start < g.children.length; start += size) {
      const members = g.children.slice(start, start + size);
      const key = "P" + groups.size;
      const part = {key, kind: "part", layer: g.layer, step: g.step, parent: g.key,
                    first: first(members[0]), children: members, ops: 0, names: [],
                    edges: new Set(), title: `items ${start + 1}–${start + members.length}`,
                    span: itemTitle(members[0]) + " … " + itemTitle(members[members.length - 1])};
      groups.set(key, part);
      for (const m of members) {
        partOf.set(m, key);
        if (m[0] !== "n") groups.get(m).parent = key;
      }
      parts.push(key);
      worklist.push(part);
    }
    g.children = parts;
  }
  NODES.forEach((n, i) => {
    const chain = [];
    for (const key of [...chains[i], "n" + i]) {  // the parts each item sits in, outermost first
      const parts = [];
      for (let p = partOf.get(key); p !== undefined; p = partOf.get(p)) parts.unshift(p);
      chain.push(...parts, key);
    }
    chains[i] = chain;
    for (const g of chain.slice(1, -1)) {
      const info = groups.get(g);
      if (n.kind === "op" || n.kind === "output") info.ops += 1;
      if (n.name && !info.names.includes(n.name) && info.kind === "step") info.names.push(n.name);
    }
  });
  for (const g of groups.values()) {  // how many time steps each group holds
    if (g.kind !== "step") continue;
    for (let up = g.parent; up !== null; up = groups.get(up).parent) {
      const outer = groups.get(up);
      outer.steps = (outer.steps || 0) + 1;
    }
  }
  // Each dependency a -> b is an edge between two children of the deepest group holding both.
  NODES.forEach((n, b) => {
    for (const a of n.parents) {
      const ca = chains[a], cb = chains[b];
      let d = 0;
      while (ca[d + 1] === cb[d + 1]) d += 1;
      groups.get(ca[d]).edges.add(ca[d + 1] + "\n" + cb[d + 1]);
    }
  });

  // -- what is open, and what represents a node ------------------------------------------
  const open = new Set([""]);
  function visibleOf(i) {  // the drawn item that holds node i: itself or a closed group
    const chain = chains[i];
    for (let d = 1; d < chain.length - 1; d++) if (!open.has(chain[d])) return chain[d];
    return chain[chain.length - 1];
  }

  // -- labels ---------------------------------------------------------------------------
  function shapeText(shape) {
    return shape.length === 0 ? "scalar" : "(" + shape.join(", ") + (shape.length === 1 ? ",)" : ")");
  }
  function groupTitle(g) {  // a step's box sits inside its layer's: "t=37" is enough there
    if (g.kind === "part") return g.title;
    return g.kind === "layer" ? g.layer : "t=" + g.step;
  }
  function itemTitle(key) { return key[0] === "n" ? NODES[+key.slice(1)].label : groupTitle(groups.get(key)); }
  function fullTitle(g) {
    return g.kind === "step" && g.layer != null ? g.layer + " · t=" + g.step : groupTitle(g);
  }
  function groupSub(g) {
    if (g.kind === "step") return g.names.length ? g.names.join(" ") : g.ops + " ops";
    const parts = g.kind === "part" ? [g.span] : [];
    if (g.kind === "layer" && DATA.layerNotes[g.layer]) parts.push(DATA.layerNotes[g.layer]);
    if (g.steps) parts.push(g.steps + " steps");
    parts.push(g.ops + " ops");
    return parts.join(" · ");
  }
  function esc(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }
  function textWidth(text) { return text.length * CHAR; }

  // -- layout ---------------------------------------------------------------------------
  // sizes: key -> {w, h}; offsets: key -> {x, y} relative to the parent group's corner.
  let sizes, offsets;

  function measure(key) {
    let size;
    if (key[0] === "n") {
      const n = NODES[+key.slice(1)];
      size = {w: Math.max(56, textWidth(n.label), textWidth(shapeText(n.shape))) + 18, h: NODE_H};
    } else if (!open.has(key)) {
      const g = groups.get(key);
      size = {w: Math.max(textWidth(groupTitle(g)) * 1.1, textWidth(groupSub(g))) + 24, h: GROUP_H};
    } else {
      size = layoutGroup(key);
    }
    sizes.set(key, size);
    return size;
  }

  // The edges among a group's items without the ones that close a cycle (found by a depth-first
  // search in creation order; a graph of layers and steps rarely has any), and a topological
  // order of the items.
  function acyclic(items, edges) {
    const out = new Map(items.map((c) => [c, []]));
    for (const e of edges) { const [a, b] = e.split("\n"); out.get(a).push(b); }
    const state = new Map(), topo = [];
    const preds = new Map(items.map((c) => [c, []])), succs = new Map(items.map((c) => [c, []]));
    for (const start of items) {
      if (state.has(start)) continue;
      state.set(start, 1);
      const stack = [[start, 0]];
      while (stack.length) {
        const top = stack[stack.length - 1];
        const next = out.get(top[0])[top[1]++];
        if (next === undefined) { state.set(top[0], 2); topo.push(top[0]); stack.pop(); continue; }
        if (state.get(next) === 1) continue;  // back to an item on the path: a cycle
        preds.get(next).push(top[0]);
        succs.get(top[0]).push(next);
        if (!state.has(next)) { state.set(next, 1); stack.push([next, 0]); }
      }
    }
    return {preds, succs, topo: topo.reverse()};
  }

  // How many columns of ranks go in one row: all of them if they fit the screen's width (or
  // are a few, not too wide), else as many as make the group's shape nearest the screen's
  // (50 time steps become 5 rows of 10).
  function rowLength(columns) {
    const widths = columns.map((col) => col.reduce((w, c) => Math.max(w, sizes.get(c).w), 0));
    const heights = columns.map((col) => col.reduce((h, c) => h + sizes.get(c).h + MEMBER_GAP, 0));
    const total = widths.reduce((a, b) => a + b + COL_GAP, 0);
    if (total <= WRAP_WIDTH || (columns.length <= 8 && total <= 3 * WRAP_WIDTH)) return columns.length;
    const target = Math.max(1, svg.clientWidth) / Math.max(1, svg.clientHeight);
    let best = columns.length, bestScore = Infinity;
    // Row lengths 1, 2, ... growing by a tenth: a few dozen tries even for 10,000 columns.
    for (let k = 1; k <= columns.length; k = Math.max(k + 1, Math.floor(k * 1.1))) {
      let width = 0, height = 0;
      for (let start = 0; start < columns.length; start += k) {
        let w = 0, h = 0;
        for (let j = start; j < Math.min(start + k, columns.length); j++) {
          w += widths[j] + COL_GAP;
          h = Math.max(h, heights[j]);
        }
        width = Math.max(width, w);
        height += h + ROW_GAP;
      }
      const score = Math.abs(Math.log(width / height / target));
      if (score < bestScore) { best = k; bestScore = score; }
    }
    return best;
  }

  function layoutGroup(key) {
    const g = groups.get(key);
    const items = g.children;
    for (const c of items) measure(c);
    const position = new Map(items.map((c, k) => [c, k]));
    const { preds, succs, topo } = acyclic(items, g.edges);
    // Rank: longest path from the sources; a source (a weight, an initial state) then moves
    // next to its first user.
    const rank = new Map();
    for (const c of topo) rank.set(c, preds.get(c).reduce((r, p) => Math.max(r, rank.get(p) + 1), 0));
    for (const c of topo.slice().reverse()) {
      if (preds.get(c).length === 0 && succs.get(c).length > 0) {
        const firstUse = succs.get(c).reduce((r, s) => Math.min(r, rank.get(s)), Infinity);
        rank.set(c, Math.max(0, firstUse - 1));
      }
    }
    const ranks = [];
    for (const c of items) (ranks[rank.get(c)] = ranks[rank.get(c)] || []).push(c);
    const columns = ranks.filter(Boolean);
    // Within a rank: by the mean place of the items feeding it (one sweep), then creation order.
    const place = new Map();
    for (const column of columns) {
      const score = (c) => {
        const ps = preds.get(c).filter((p) => place.has(p));
        return ps.length ? ps.reduce((s, p) => s + place.get(p), 0) / ps.length : position.get(c);
      };
      const scores = new Map(column.map((c) => [c, score(c)]));
      column.sort((a, b) => scores.get(a) - scores.get(b) || position.get(a) - position.get(b));
      column.forEach((c, k) => place.set(c, k));
    }
    const perRow = rowLength(columns);
    let y = HEADER + PAD, width = 0;
    for (let start = 0; start < columns.length; start += perRow) {
      const row = columns.slice(start, start + perRow);
      const heights = row.map((col) => col.reduce((s, c) => s + sizes.get(c).h, 0) +
                                       MEMBER_GAP * (col.length - 1));
      const rowHeight = Math.max(...heights);
      let x = PAD;
      row.forEach((col, k) => {
        const colWidth = Math.max(...col.map((c) => sizes.get(c).w));
        let cy = y + (rowHeight - heights[k]) / 2;
        for (const c of col) {
          const s = sizes.get(c);
          // gap: the middle of the space above a wrapped row, where edges coming back run
          offsets.set(c, {x: x + (colWidth - s.w) / 2, y: cy, gap: start ? y - ROW_GAP / 2 : null});
          cy += s.h + MEMBER_GAP;
        }
        x += colWidth + COL_GAP;
      });
      width = Math.max(width, x - COL_GAP + PAD);
      y += rowHeight + ROW_GAP;
    }
    const title = key === "" ? 0 : textWidth(groupTitle(g) + " · " + groupSub(g)) + 2 * PAD;
    return {w: Math.max(width, title, 120), h: y - ROW_GAP + PAD};
  }

  // Absolute boxes of everything drawn: key -> {x, y, w, h}.
  let boxes;
  function layout() {
    sizes = new Map();
    offsets = new Map([["", {x: 0, y: 0}]]);
    boxes = new Map();
    measure("");
    const stack = [["", 0, 0, null]];
    while (stack.length) {
      const [key, x, y, gap] = stack.pop();
      const s = sizes.get(key);
      boxes.set(key, {x, y, w: s.w, h: s.h, gap});
      if (open.has(key)) {
        for (const c of groups.get(key).children) {
          const o = offsets.get(c);
          // an item in an unwrapped group inherits the gap above the wrapped row it sits in
          stack.push([c, x + o.x, y + o.y, o.gap === null ? gap : y + o.gap]);
        }
      }
    }
  }

  // -- drawing --------------------------------------------------------------------------
  let selected = null;  // index of the selected node

  function edgePath(a, b) {
    const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2;
    const f = (v) => v.toFixed(1);
    if (x2 < x1 && b.gap !== null && b.gap > a.y + a.h) {  // to the start of a wrapped row
      return `M${f(x1)},${f(y1)} H${f(x1 + 14)} V${f(b.gap)} H${f(x2 - 10)} V${f(y2)} H${f(x2)}`;
    }
    const bend = Math.max(30, Math.abs(x2 - x1) / 2);
    return `M${x1.toFixed(1)},${y1.toFixed(1)} C${(x1 + bend).toFixed(1)},${y1.toFixed(1)} ` +
      `${(x2 - bend).toFixed(1)},${y2.toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}`;
  }

  function dataAttributes(layer, step) {
    return (layer == null ? "" : ` data-layer="${esc(layer)}"`) +
      (step == null ? "" : ` data-step="${step}"`);
  }

  function render() {
    const parts = [];
    const stack = [""];
    const order = [];
    while (stack.length) {  // groups before their children, so children are drawn on top
      const key = stack.pop();
      order.push(key);
      if (open.has(key) && key[0] !== "n") stack.push(...groups.get(key).children.slice().reverse());
    }
    const nodeParts = [];
    for (const key of order) {
      const b = boxes.get(key);
      const at = `x="${b.x.toFixed(1)}" y="${b.y.toFixed(1)}"`;
      if (key[0] === "n") {
        const i = +key.slice(1), n = NODES[i];
        const sel = i === selected ? " selected" : "";
        nodeParts.push(
          `<g class="node kind-${n.kind}${sel}" data-key="${key}"${dataAttributes(n.layer, n.step)}` +
          (n.name ? ` data-name="${esc(n.name)}"` : "") + `><title>${esc(n.label)}</title>` +
          `<rect ${at} width="${b.w.toFixed(1)}" height="${b.h}" rx="6"></rect>` +
          `<text x="${(b.x + 9).toFixed(1)}" y="${(b.y + 15).toFixed(1)}">${esc(n.label)}</text>` +
          `<text class="shape" x="${(b.x + 9).toFixed(1)}" y="${(b.y + 29).toFixed(1)}">` +
          `${shapeText(n.shape)}</text></g>`);
        continue;
      }
      if (key === "") continue;
      const g = groups.get(key);
      const attrs = `data-key="${esc(key)}"${dataAttributes(g.layer, g.step)}`;
      if (open.has(key)) {
        parts.push(
          `<g class="group open kind-${g.kind}" ${attrs}>` +
          `<rect class="frame" ${at} width="${b.w.toFixed(1)}" height="${b.h.toFixed(1)}" rx="8"></rect>` +
          `<rect class="header" ${at} width="${b.w.toFixed(1)}" height="${HEADER}" rx="8">` +
          `<title>close ${esc(groupTitle(g))}</title></rect>` +
          `<text x="${(b.x + PAD).toFixed(1)}" y="${(b.y + 16).toFixed(1)}"><tspan font-weight="bold">` +
          `${esc(groupTitle(g))}</tspan> · ${esc(groupSub(g))}  ▾</text></g>`);
      } else {
        nodeParts.push(
          `<g class="group closed kind-${g.kind}" ${attrs}><title>open ${esc(groupTitle(g))}</title>` +
          `<rect ${at} width="${b.w.toFixed(1)}" height="${b.h}" rx="8"></rect>` +
          `<text x="${(b.x + 12).toFixed(1)}" y="${(b.y + 18).toFixed(1)}">${esc(groupTitle(g))} ▸</text>` +
          `<text class="sub" x="${(b.x + 12).toFixed(1)}" y="${(b.y + 34).toFixed(1)}">` +
          `${esc(groupSub(g))}</text></g>`);
      }
    }
    // An item that feeds (or is fed by) more than FAN others, like a weight used at every
    // step, would hide the picture behind its lines: those are drawn only while one of their
    // ends is selected, and otherwise end in a short stub that says how many there are.
    const edges = new Map();
    NODES.forEach((n, b) => {
      const vb = visibleOf(b);
      for (const a of n.parents) {
        const va = visibleOf(a);
        if (va === vb) continue;
        const key = va + "\n" + vb;
        const edge = edges.get(key) || {va, vb, hot: false, param: false};
        edge.hot = edge.hot || (selected !== null && (a === selected || b === selected));
        edge.param = edge.param || (NODES[a].kind === "param" && va[0] === "n");
        edges.set(key, edge);
      }
    });
    const outs = new Map(), ins = new Map();
    const count = (m, k) => m.set(k, (m.get(k) || 0) + 1);
    for (const e of edges.values()) { count(outs, e.va); count(ins, e.vb); }
    const edgeParts = [], hiddenOut = new Map(), hiddenIn = new Map();
    for (const e of edges.values()) {
      if (!e.hot && (outs.get(e.va) > FAN || ins.get(e.vb) > FAN)) {
        count(hiddenOut, e.va);
        count(hiddenIn, e.vb);
        continue;
      }
      edgeParts.push(`<path class="edge${e.param ? " from-param" : ""}${e.hot ? " hot" : ""}" ` +
                     `d="${edgePath(boxes.get(e.va), boxes.get(e.vb))}"></path>`);
    }
    const stub = (key, n, out) => {
      const b = boxes.get(key), y = b.y + b.h / 2, x = out ? b.x + b.w : b.x - STUB;
      const what = out ? `used by ${n} more` : `${n} more inputs`;
      return `<path class="edge stub" d="M${x.toFixed(1)},${y.toFixed(1)} h${STUB}"></path>` +
        (n > 1 ? `<text class="stub" x="${(x + STUB / 2).toFixed(1)}" y="${(y - 4).toFixed(1)}">` +
                 `${out ? "→" : ""}${n}${out ? "" : "→"}<title>${what} (lines to or from items used many ` +
                 `times are drawn while a node at one end is selected)</title></text>` : "");
    };
    for (const [key, n] of hiddenOut) edgeParts.push(stub(key, n, true));
    for (const [key, n] of hiddenIn) edgeParts.push(stub(key, n, false));
    viewport.innerHTML = parts.join("") + edgeParts.join("") + nodeParts.join("");
  }

  // -- pan and zoom ---------------------------------------------------------------------
  const view = {x: 0, y: 0, k: 1};
  let fittedSize = "", untouched = true;  // the first view follows the page's size until used
  function applyView() {
    viewport.setAttribute("transform", `translate(${view.x},${view.y}) scale(${view.k})`);
  }
  function fit(box, maxZoom = MAX_ZOOM) {
    const W = svg.clientWidth, H = svg.clientHeight, m = 24;
    if (W <= 2 * m || H <= 2 * m) return false;  // not laid out yet (an iframe still loading)
    fittedSize = W + "x" + H;
    view.k = Math.min(maxZoom, (W - 2 * m) / box.w, (H - 2 * m) / box.h);
    view.x = W / 2 - (box.x + box.w / 2) * view.k;
    view.y = H / 2 - (box.y + box.h / 2) * view.k;
    applyView();
    return true;
  }
  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    untouched = false;
    const r = svg.getBoundingClientRect();
    const px = event.clientX - r.left, py = event.clientY - r.top;
    const k = Math.min(8, Math.max(0.01, view.k * Math.exp(-event.deltaY * 0.0015)));
    view.x = px - (px - view.x) * (k / view.k);
    view.y = py - (py - view.y) * (k / view.k);
    view.k = k;
    applyView();
  }, {passive: false});
  let drag = null, dragged = false;
  svg.addEventListener("pointerdown", (event) => {
    untouched = false;
    if (event.button !== 0) return;
    drag = {x: event.clientX, y: event.clientY, vx: view.x, vy: view.y, id: event.pointerId};
    dragged = false;
  });
  svg.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!dragged && Math.hypot(dx, dy) < 4) return;
    if (!dragged) { dragged = true; svg.setPointerCapture(drag.id); svg.classList.add("dragging"); }
    view.x = drag.vx + dx;
    view.y = drag.vy + dy;
    applyView();
  });
  function endDrag() { drag = null; svg.classList.remove("dragging"); }
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);

  // -- opening, closing, selecting --------------------------------------------------------
  function relayout(anchorKey) {  // keep anchorKey's box where it was on the screen
    const before = boxes && boxes.get(anchorKey);
    layout();
    render();
    const after = boxes.get(anchorKey);
    if (before && after) {
      view.x += (before.x - after.x) * view.k;
      view.y += (before.y - after.y) * view.k;
      applyView();
    }
  }
  function openGroup(key) {
    open.add(key);
    relayout(key);
    fit(boxes.get(key));
    showGroup(key);
  }
  function closeGroup(key) {
    open.delete(key);
    relayout(key);
    showGroup(key);
  }
  function reveal(i) {  // open the groups around node i, select it, and bring it into view
    untouched = false;
    for (const key of chains[i].slice(0, -1)) open.add(key);
    selected = i;
    layout();
    render();
    const parent = chains[i][chains[i].length - 2];
    fit(parent === "" ? boxes.get("n" + i) : boxes.get(parent));
    showNode(i);
  }
  function select(i) {
    selected = i;
    render();
    showNode(i);
  }

  svg.addEventListener("click", (event) => {
    if (dragged) { dragged = false; return; }
    const target = event.target.closest("[data-key]");
    if (!target) return;
    const key = target.dataset.key;
    if (key[0] === "n") select(+key.slice(1));
    else if (target.classList.contains("closed")) openGroup(key);
    else if (event.target.classList.contains("header")) closeGroup(key);
  });

  // -- the panel ------------------------------------------------------------------------
  function fmt(value) {  // 4 significant digits, as Python's "{:.4g}"
    const v = Number(value);
    if (!Number.isFinite(v)) return String(v).replace("Infinity", "inf").replace("NaN", "nan");
    if (v === 0) return "0";
    const exponent = Math.floor(Math.log10(Math.abs(v)));
    if (exponent < -4 || exponent >= 4) {
      const [mantissa, power] = v.toExponential(3).split("e");
      return String(Number(mantissa)) + "e" + (power[0] === "-" ? "-" : "+") +
        power.replace(/^[+-]/, "").padStart(2, "0");
    }
    return String(Number(v.toPrecision(4)));
  }
  function row(name, value) { return `<tr><th>${name}</th><td>${value}</td></tr>`; }
  function link(i) { return `<a data-node="${i}">${esc(NODES[i].label)}</a>`; }
  function where(n) {
    return (n.layer == null ? "" : n.layer) + (n.step == null ? "" : " · t=" + n.step);
  }

  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function viridis(u) {
    const s = Math.min(0.9999, Math.max(0, u)) * (VIRIDIS.length - 1), k = Math.floor(s), f = s - k;
    return VIRIDIS[k].map((c, j) => Math.round(c + (VIRIDIS[k + 1][j] - c) * f));
  }
  function diverging(v, scale) {  // blue below 0, white at 0, red above
    const u = scale > 0 ? Math.max(-1, Math.min(1, v / scale)) : 0;
    const [r, g, b] = u < 0 ? [49, 104, 176] : [190, 40, 50];
    const a = Math.abs(u);
    return [255 + (r - 255) * a, 255 + (g - 255) * a, 255 + (b - 255) * a].map(Math.round);
  }

  function heatmapHtml(part, what) {
    const h = part.heatmap;
    if (!h.rows) return "";
    const cell = Math.max(2, Math.min(24, Math.floor(288 / h.cols), Math.floor(144 / h.rows)));
    return `<canvas class="heatmap" data-of="${what}" width="${h.cols * cell}" ` +
      `height="${h.rows * cell}"></canvas>` +
      `<div class="legend"><span>${fmt(h.lo)}</span><canvas class="bar" data-of="${what}" ` +
      `width="96" height="10"></canvas><span>${fmt(h.hi)}</span></div>`;
  }
  function paintHeatmap(part, what) {
    const h = part.heatmap;
    const canvas = panel.querySelector(`canvas.heatmap[data-of="${what}"]`);
    if (!canvas) return;
    const bytes = Uint8Array.from(atob(h.bytes), (c) => c.charCodeAt(0));
    const lo = Number(h.lo), hi = Number(h.hi);
    const scale = Math.max(Math.abs(lo), Math.abs(hi));
    const colour = (code) => {
      if (code === 255) return [160, 160, 160];
      return what === "grad" ? diverging(lo + (hi - lo) * code / 254, scale) : viridis(code / 254);
    };
    const cell = canvas.width / h.cols, ctx = canvas.getContext("2d");
    for (let r = 0; r < h.rows; r++) {
      for (let c = 0; c < h.cols; c++) {
        ctx.fillStyle = `rgb(${colour(bytes[r * h.cols + c]).join(",")})`;
        ctx.fillRect(c * cell, r * cell, cell, cell);
      }
    }
    const bar = panel.querySelector(`canvas.bar[data-of="${what}"]`), bctx = bar.getContext("2d");
    for (let x = 0; x < bar.width; x++) {
      bctx.fillStyle = `rgb(${colour(Math.round(254 * x / (bar.width - 1))).join(",")})`;
      bctx.fillRect(x, 0, 1, bar.height);
    }
  }

  function partHtml(n, part, what, title) {
    const [min, mean, max, std] = part.stats;
    const cells = [["min", min], ["mean", mean], ["max", max], ["std", std]];
    const rows = n.shape.length > 1 ? n.shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
    const cols = n.shape.length ? n.shape[n.shape.length - 1] : 1;
    const h = part.heatmap;
    const shrunk = h.rows !== rows || h.cols !== cols;
    return `<h3>${title}</h3><table class="stats"><tr>` +
      cells.map(([k]) => `<th>${k}</th>`).join("") + "</tr><tr>" +
      cells.map(([k, v]) => `<td class="stat" data-of="${what}" data-stat="${k}">${fmt(v)}</td>`)
        .join("") + "</tr></table>" + heatmapHtml(part, what) +
      `<p class="note">${rows} × ${cols}` + (shrunk ? ` shown as ${h.rows} × ${h.cols} block means` : "") +
      (n.shape.length > 2 ? " (rows: every axis but the last)" : "") + "</p>";
  }

  const FREED_NOTE = "dropped inside <code>mt.freeing_values()</code>: run the forward pass " +
    "outside that block to keep it";
  const NO_GRAD_NOTE = ANY_GRAD
    ? "not kept: <code>loss.backward(retain_grads=True)</code> keeps every one"
    : "no backward pass ran: <code>model.explore(x, path, y=y)</code> runs one";

  function nodeList(title, indices, limit = 12) {
    if (!indices.length) return "";
    const items = indices.slice(0, limit)
      .map((j) => `<li>${link(j)} <small>${esc(where(NODES[j]))}</small></li>`);
    if (indices.length > limit) items.push(`<li>… ${indices.length - limit} more</li>`);
    return `<h3>${title}</h3><ul>${items.join("")}</ul>`;
  }

  function showNode(i) {
    const n = NODES[i];
    const users = [];
    NODES.forEach((m, j) => { if (m.parents.includes(i)) users.push(j); });
    const dash = (v) => (v == null ? "—" : esc(v));
    let body = `<h2>${esc(n.label)}</h2><table>` + row("op", n.op == null ? "— (leaf)" : esc(n.op)) +
      row("name", dash(n.name)) + row("layer", dash(n.layer)) + row("step", dash(n.step)) +
      row("shape", shapeText(n.shape)) + row("dtype", n.dtype) + row("kind", n.kind) + "</table>" +
      nodeList("inputs", n.parents, Infinity) + nodeList("used by", users);
    if (n.value) body += partHtml(n, n.value, "value", "value");
    else if (n.freed) body += `<h3>value</h3><p class="note">${FREED_NOTE}</p>`;
    if (n.grad) body += partHtml(n, n.grad, "grad", "gradient d loss / d " + esc(n.name || n.op || "node"));
    else if (n.kind !== "data") body += `<h3>gradient</h3><p class="note">${NO_GRAD_NOTE}</p>`;
    panel.innerHTML = body;
    if (n.value) paintHeatmap(n.value, "value");
    if (n.grad) paintHeatmap(n.grad, "grad");
  }

  function showGroup(key) {
    const g = groups.get(key);
    const steps = g.steps || 0;
    panel.innerHTML = `<h2>${esc(fullTitle(g))}</h2><table>` +
      (DATA.layerNotes[g.layer] && g.kind === "layer" ? row("layer", esc(DATA.layerNotes[g.layer])) : "") +
      (steps ? row("steps", steps) : "") + row("ops", g.ops) +
      (g.kind === "step" ? row("names", esc(g.names.join(", ") || "—")) : "") + "</table>" +
      `<p class="note">${open.has(key) ? "Click its title bar to close it." : "Click it to open it."}</p>`;
  }

  panel.addEventListener("click", (event) => {
    const a = event.target.closest("a[data-node]");
    if (a) reveal(+a.dataset.node);
  });

  // -- search ---------------------------------------------------------------------------
  const search = document.getElementById("search"), results = document.getElementById("results");
  const haystacks = NODES.map((n) => [n.label, n.op, n.name, n.layer, n.step == null ? "" : "t=" + n.step]
    .filter((s) => s != null).join(" ").toLowerCase());
  function matches(query) {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return [];
    const step = (w) => /^t=\d+$/.test(w);  // "t=5" is step 5, not also 50..59
    const fits = (i, w) => (step(w) ? NODES[i].step === +w.slice(2) : haystacks[i].includes(w));
    const found = [];
    NODES.forEach((n, i) => { if (words.every((w) => fits(i, w))) found.push(i); });
    const exact = (i) => words.some((w) => NODES[i].name === w || NODES[i].op === w) ? 0 : 1;
    return found.sort((a, b) => exact(a) - exact(b) || a - b);
  }
  search.addEventListener("input", () => {
    const found = matches(search.value);
    results.hidden = !search.value.trim();
    results.innerHTML = `<li class="count">${found.length} found</li>` + found.slice(0, 200).map((i, k) =>
      `<li data-node="${i}"${k === 0 ? ' class="first"' : ""}>${esc(NODES[i].label)} ` +
      `<small>${esc(where(NODES[i]))} ${shapeText(NODES[i].shape)}</small></li>`).join("");
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      const best = matches(search.value)[0];
      if (best !== undefined) { results.hidden = true; reveal(best); }
    } else if (event.key === "Escape") {
      results.hidden = true;
    }
  });
  document.addEventListener("pointerdown", (event) => {  // a click elsewhere closes the list
    if (!event.target.closest(".search")) results.hidden = true;
  });
  results.addEventListener("click", (event) => {
    const li = event.target.closest("li[data-node]");
    if (li) { results.hidden = true; reveal(+li.dataset.node); }
  });

  // -- toolbar --------------------------------------------------------------------------
  document.getElementById("fit").addEventListener("click", () => fit(boxes.get("")));
  document.getElementById("open-all").addEventListener("click", () => {
    for (const key of groups.keys()) open.add(key);
    layout();
    render();
    fit(boxes.get(""));
  });
  document.getElementById("close-all").addEventListener("click", () => {
    open.clear();
    open.add("");
    layout();
    render();
    fit(boxes.get(""));
  });

  layout();
  render();
  window.explorer = {open, groups, nodes: NODES, reveal, openGroup};
  // The page is ready once the first view is fitted: at once, or in a notebook's iframe when
  // it gets its size.
  function firstView() {
    if (!untouched || svg.clientWidth + "x" + svg.clientHeight === fittedSize) return;
    if (fit(boxes.get(""), 1.2) && window.explorerReady === undefined) {
      performance.mark("explorer-ready");
      window.explorerReady = performance.now();
    }
  }
  firstView();
  new ResizeObserver(firstView).observe(svg);
})();
