// Hand-drawn SVG: explanation paths, graphs of query results, and the report's charts.
// Colours are the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies);
// node kinds also differ by shape and every mark has a text label, so colour is never the only cue.

const NS = "http://www.w3.org/2000/svg";

export const PALETTE = {
  blue: "#0072B2", orange: "#E69F00", green: "#009E73", vermillion: "#D55E00",
  sky: "#56B4E9", purple: "#CC79A7", yellow: "#F0E442", black: "#000000", grey: "#6b6b6b",
};
export const VARIANT_COLOURS = { treatment: PALETTE.blue, control: PALETTE.orange };
const LABEL_COLOURS = { User: PALETTE.blue, Product: PALETTE.vermillion, Category: PALETTE.green, Campaign: PALETTE.purple };

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (name === "dataset") for (const [k, v] of Object.entries(value)) el.dataset[k] = v;
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function shorten(text, max = 22) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

let uid = 0;
function arrowMarker(colour) {
  const id = `arrow-${++uid}`;
  return [id, s("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
    s("path", { d: "M0,0 L10,5 L0,10 z", fill: colour }))];
}

function nodeShape(label, x, y, r) {
  const colour = LABEL_COLOURS[label] || PALETTE.purple;
  if (label === "Product") return s("rect", { x: x - r, y: y - r, width: 2 * r, height: 2 * r, rx: 4, fill: colour });
  if (label === "Category") {
    return s("polygon", { points: `${x},${y - r - 3} ${x + r + 3},${y} ${x},${y + r + 3} ${x - r - 3},${y}`, fill: colour });
  }
  return s("circle", { cx: x, cy: y, r, fill: colour });
}

// One explanation path, left to right: nodes (shape and colour by label, name below) joined by
// arrows in the direction the relationship is stored, its type above. ``names(label, id)`` gives
// the display name. Each node and edge carries its label/id or type/direction as data attributes.
export function pathGraph(path, names, { title } = {}) {
  const nodes = path.filter((_, i) => i % 2 === 0);
  const rels = path.filter((_, i) => i % 2 === 1);
  const step = 170, r = 14, pad = 70, y = 38;
  const width = pad * 2 + step * (nodes.length - 1), height = 92;
  const [markerId, marker] = arrowMarker(PALETTE.grey);
  const described = title || "path";
  const svg = s("svg", { class: "path-graph", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": described, dataset: { hops: String(rels.length) } },
    s("title", {}, described), s("defs", {}, marker));
  rels.forEach((rel, i) => {
    const x1 = pad + step * i + r + 4, x2 = pad + step * (i + 1) - r - 4;
    const out = rel.direction === "out";
    svg.append(s("g", { class: "edge", dataset: { type: rel.type, direction: rel.direction } },
      s("line", { x1, y1: y, x2, y2: y, stroke: PALETTE.grey, "stroke-width": 2,
        "marker-end": out ? `url(#${markerId})` : null, "marker-start": out ? null : `url(#${markerId})` }),
      s("text", { x: (x1 + x2) / 2, y: y - 10, "text-anchor": "middle", class: "edge-label" }, rel.type)));
  });
  nodes.forEach((node, i) => {
    const x = pad + step * i;
    const name = names(node.label, node.id);
    svg.append(s("g", { class: "node", dataset: { label: node.label, id: node.id, name } },
      s("title", {}, `${node.label} ${node.id}: ${name}`),
      nodeShape(node.label, x, y, r),
      s("text", { x, y: y + r + 18, "text-anchor": "middle", class: "node-label" }, shorten(name)),
      s("text", { x, y: y + r + 32, "text-anchor": "middle", class: "node-kind" }, node.label)));
  });
  return svg;
}

// Nodes and relationships found in query results, laid out on a circle (small results only).
export function resultGraph(nodes, rels) {
  const n = nodes.length, size = Math.max(320, Math.min(760, 90 * Math.sqrt(n) + 220));
  const cx = size / 2, cy = size / 2, radius = size / 2 - 70, r = 12;
  const at = new Map(nodes.map((node, i) => [node.element_id, {
    x: n === 1 ? cx : cx + radius * Math.cos((2 * Math.PI * i) / n - Math.PI / 2),
    y: n === 1 ? cy : cy + radius * Math.sin((2 * Math.PI * i) / n - Math.PI / 2) }]));
  const [markerId, marker] = arrowMarker(PALETTE.grey);
  const svg = s("svg", { class: "result-graph", viewBox: `0 0 ${size} ${size}`, width: size, height: size, role: "img",
    "aria-label": `graph of ${n} nodes and ${rels.length} relationships` }, s("defs", {}, marker));
  for (const rel of rels) {
    const a = at.get(rel.start), b = at.get(rel.end);
    if (!a || !b) continue;
    const len = Math.hypot(b.x - a.x, b.y - a.y) || 1, ux = (b.x - a.x) / len, uy = (b.y - a.y) / len;
    svg.append(s("g", { class: "edge", dataset: { type: rel.type } },
      s("line", { x1: a.x + ux * (r + 2), y1: a.y + uy * (r + 2), x2: b.x - ux * (r + 4), y2: b.y - uy * (r + 4),
        stroke: PALETTE.grey, "stroke-width": 1.5, "marker-end": `url(#${markerId})` }),
      s("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 4, "text-anchor": "middle", class: "edge-label" }, rel.type)));
  }
  for (const node of nodes) {
    const { x, y } = at.get(node.element_id);
    const label = node.labels[0] || "";
    const props = node.properties || {};
    const name = String(props.name ?? props.id ?? node.element_id);
    svg.append(s("g", { class: "node", dataset: { label, id: String(props.id ?? "") } },
      s("title", {}, `${node.labels.join(":")} ${props.id ?? ""}: ${name}`),
      nodeShape(label, x, y, r),
      s("text", { x, y: y + r + 14, "text-anchor": "middle", class: "node-label" }, shorten(name, 18))));
  }
  return svg;
}

// -- charts -------------------------------------------------------------------------------------
function ticks(max, count = 4) {
  if (!(max > 0)) return [0];
  const raw = max / count, mag = 10 ** Math.floor(Math.log10(raw));
  const stepSize = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw);
  const out = [0];
  while (out[out.length - 1] < max - 1e-12) out.push(out.length * stepSize);  // the last tick tops max
  return out;
}

// Lines over time with 95% bands: series = [{name, colour, points: [{t: Date, y, lo, hi}]}].
export function lineChart(series, { title, yLabel, format = (v) => v } = {}) {
  const W = 640, H = 310, L = 64, R = 16, T = 44, B = 46;
  const all = series.flatMap((one) => one.points);
  const times = all.map((p) => p.t.getTime());
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 1);
  const yMax = Math.max(1e-9, ...all.map((p) => (p.hi ?? p.y ?? 0)));
  const yTicks = ticks(yMax);
  const top = yTicks[yTicks.length - 1] || yMax;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => H - B - (v / top) * (H - T - B);
  const svg = s("svg", { class: "chart line-chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title },
    s("title", {}, title), s("text", { x: L, y: 16, class: "chart-title" }, title));
  for (const v of yTicks) {
    svg.append(s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }),
      s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, format(v)));
  }
  const fmtTime = (t) => new Date(t).toISOString().slice(5, 16).replace("T", " ");
  [t0, (t0 + t1) / 2, t1].forEach((t, i) => svg.append(
    s("text", { x: x(t), y: H - B + 16, "text-anchor": ["start", "middle", "end"][i], class: "tick" }, fmtTime(t))));
  svg.append(s("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", class: "axis-label" }, "time (UTC)"),
    s("text", { x: 14, y: (T + H - B) / 2, transform: `rotate(-90 14 ${(T + H - B) / 2})`, "text-anchor": "middle",
      class: "axis-label" }, yLabel || ""));
  series.forEach((one, k) => {
    const pts = one.points.filter((p) => p.y !== null && p.y !== undefined);
    const band = pts.filter((p) => p.lo !== null && p.hi !== null && p.lo !== undefined);
    const g = s("g", { class: "series", dataset: { series: one.name, points: String(pts.length) } });
    if (band.length) {
      const d = band.map((p, i) => `${i ? "L" : "M"}${x(p.t.getTime())},${y(p.hi)}`).join(" ") + " " +
        band.slice().reverse().map((p) => `L${x(p.t.getTime())},${y(p.lo)}`).join(" ") + " Z";
      g.append(s("path", { d, fill: one.colour, "fill-opacity": 0.18, stroke: "none", class: "band" }));
    }
    g.append(s("path", { d: pts.map((p, i) => `${i ? "L" : "M"}${x(p.t.getTime())},${y(p.y)}`).join(" "),
      fill: "none", stroke: one.colour, "stroke-width": 2.5, "stroke-dasharray": k ? "6 4" : null, class: "line" }));
    svg.append(g);
    const lx = L + 10 + k * 200;
    svg.append(s("line", { x1: lx, x2: lx + 24, y1: T - 16, y2: T - 16, stroke: one.colour, "stroke-width": 2.5,
      "stroke-dasharray": k ? "6 4" : null }), s("text", { x: lx + 30, y: T - 12, class: "legend" }, one.name));
  });
  return svg;
}

// Grouped bars: groups = [{label, values: {seriesName: number}}], series = [{name, colour}].
export function barChart(groups, series, { title, log = false, format = (v) => String(v) } = {}) {
  const W = 640, H = 290, L = 56, R = 16, T = 56, B = 40;
  const max = Math.max(1, ...groups.flatMap((g) => series.map((one) => g.values[one.name] || 0)));
  const scale = log ? (v) => Math.log10(1 + v) / Math.log10(1 + max) : (v) => v / max;
  const gw = (W - L - R) / groups.length, bw = Math.min(48, (gw - 20) / series.length);
  const svg = s("svg", { class: "chart bar-chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title },
    s("title", {}, title), s("text", { x: L, y: 16, class: "chart-title" }, title),
    s("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
  groups.forEach((group, gi) => {
    const gx = L + gi * gw + (gw - bw * series.length) / 2;
    series.forEach((one, si) => {
      const v = group.values[one.name] || 0, hgt = scale(v) * (H - T - B);
      const bx = gx + si * bw;
      svg.append(s("g", { class: "bar", dataset: { group: group.label, series: one.name, value: String(v) } },
        s("title", {}, `${group.label}, ${one.name}: ${format(v)}`),
        s("rect", { x: bx + 2, y: H - B - hgt, width: bw - 4, height: Math.max(hgt, 0.5), fill: one.colour,
          class: si % 2 ? "hatched" : null }),
        s("text", { x: bx + bw / 2, y: H - B - hgt - 4, "text-anchor": "middle", class: "tick" }, format(v))));
    });
    svg.append(s("text", { x: L + gi * gw + gw / 2, y: H - B + 16, "text-anchor": "middle", class: "tick" }, group.label));
  });
  series.forEach((one, k) => {
    const lx = L + 10 + k * 160;
    svg.append(s("rect", { x: lx, y: T - 32, width: 14, height: 10, fill: one.colour }),
      s("text", { x: lx + 20, y: T - 23, class: "legend" }, one.name));
  });
  if (log) svg.append(s("text", { x: W - R, y: 16, "text-anchor": "end", class: "tick" }, "log scale"));
  return svg;
}
