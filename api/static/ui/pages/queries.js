// Analyst queries: the named queries of cypher/analyst/ with a form per query, read-only Cypher,
// results as a table (CSV export) and, when they hold nodes, relationships or paths, as a graph.

import { api, errorBox, fmt, h, loading, section, table } from "../dom.js";
import { resultGraph } from "../svg.js";

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ident = (name) => (IDENT.test(name) ? name : `\`${String(name).replaceAll("`", "``")}\``);

// An explanation path as the Cypher that matches exactly it (ids as literals: pastes anywhere).
export function pathCypher(path) {
  let pattern = "";
  path.forEach((step, i) => {
    if (i % 2 === 0) pattern += `(n${i / 2}:${ident(step.label)} {id: ${JSON.stringify(step.id)}})`;
    else pattern += step.direction === "out" ? `-[:${ident(step.type)}]->` : `<-[:${ident(step.type)}]-`;
  });
  return `MATCH p = ${pattern}\nRETURN p`;
}

// -- the form of a named query's parameters ------------------------------------------------------
function paramField(query, param) {
  const id = `param-${query.name}-${param.name}`;
  const hint = `${param.type}${param.required ? ", required" : param.default !== null && param.default !== undefined ? `, default ${JSON.stringify(param.default)}` : ", optional"}`;
  let input;
  if (param.type === "bool") {
    input = h("select", { id, name: param.name, dataset: { type: param.type } },
      h("option", { value: "" }, param.required ? "choose" : "default"),
      h("option", { value: "true", selected: param.default === true }, "true"),
      h("option", { value: "false", selected: param.default === false }, "false"));
  } else if (param.type === "list" || param.type === "json") {
    input = h("textarea", { id, name: param.name, rows: 2, dataset: { type: param.type }, placeholder: "JSON, e.g. [\"a\", \"b\"]" },
      param.default !== null && param.default !== undefined ? JSON.stringify(param.default) : "");
  } else {
    const numeric = param.type === "int" || param.type === "float";
    input = h("input", { id, name: param.name, type: numeric ? "number" : "text", step: param.type === "float" ? "any" : numeric ? "1" : null,
      value: param.default !== null && param.default !== undefined ? String(param.default) : "", dataset: { type: param.type },
      required: param.required, spellcheck: "false" });
  }
  return h("div", { class: "field" },
    h("label", { for: id }, param.name, h("span", { class: "muted" }, ` (${hint})`)), input,
    param.description ? h("small", { class: "muted" }, param.description) : null);
}

function readParams(form) {
  const params = {};
  for (const el of form.querySelectorAll("[data-type]")) {
    const raw = el.value.trim();
    if (raw === "") continue;
    const type = el.dataset.type;
    if (type === "int") params[el.name] = parseInt(raw, 10);
    else if (type === "float") params[el.name] = parseFloat(raw);
    else if (type === "bool") params[el.name] = raw === "true";
    else if (type === "list" || type === "json") {
      try { params[el.name] = JSON.parse(raw); } catch { throw new Error(`${el.name}: not valid JSON`); }
    } else params[el.name] = raw;
  }
  return params;
}

// -- results ---------------------------------------------------------------------------------------
const isNode = (v) => v && typeof v === "object" && Array.isArray(v.labels) && "element_id" in v;
const isRel = (v) => v && typeof v === "object" && typeof v.type === "string" && "start" in v && "end" in v;
const isPath = (v) => v && typeof v === "object" && Array.isArray(v.nodes) && Array.isArray(v.relationships);

function cellText(value) {
  if (value === null || value === undefined) return "";
  if (isPath(value)) return value.nodes.map((n) => `(${n.labels.join(":")} ${n.properties?.name ?? n.properties?.id ?? ""})`).join("–");
  if (isNode(value)) return `(${value.labels.join(":")} ${value.properties?.name ?? value.properties?.id ?? value.element_id})`;
  if (isRel(value)) return `[:${value.type}]`;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function collectGraph(rows) {
  const nodes = new Map(), rels = new Map();
  const visit = (v) => {
    if (isPath(v)) { v.nodes.forEach(visit); v.relationships.forEach(visit); }
    else if (isNode(v)) nodes.set(v.element_id, v);
    else if (isRel(v)) rels.set(v.element_id, v);
    else if (Array.isArray(v)) v.forEach(visit);
  };
  rows.forEach((row) => row.forEach(visit));
  return { nodes: [...nodes.values()], rels: [...rels.values()] };
}

function csv(columns, rows) {
  const quote = (text) => (/[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
  return [columns, ...rows.map((row) => row.map(cellText))].map((r) => r.map(quote).join(",")).join("\r\n") + "\r\n";
}

function download(filename, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function resultView(result, name) {
  const notes = [`${fmt.int(result.rows.length)} row(s)`];
  if (result.truncated) notes.push(`cut short (${result.truncated_by || "limit"})`);
  if (result.suppressed) notes.push(`${fmt.int(result.suppressed)} row(s) withheld: groups smaller than ${result.min_group_size} people`);
  const wrap = h("div", { class: "result", dataset: { rows: String(result.rows.length) } },
    h("p", { class: "muted", role: "status" }, notes.join(" · ")),
    h("button", { type: "button", class: "export", onclick: () => download(`${name}.csv`, csv(result.columns, result.rows)) }, "Export CSV"));
  const { nodes, rels } = collectGraph(result.rows);
  if (nodes.length && nodes.length <= 150) wrap.append(h("div", { class: "graph-wrap" }, resultGraph(nodes, rels)));
  else if (nodes.length) wrap.append(h("p", { class: "muted" }, `${nodes.length} nodes: too many to draw; see the table.`));
  wrap.append(table(result.columns, result.rows.map((row) => row.map(cellText)),
    { numeric: result.columns.map((_, i) => i).filter((i) => result.rows.length && result.rows.every((r) => typeof r[i] === "number" || r[i] === null)) }));
  return wrap;
}

async function runAndShow(out, call, name) {
  out.replaceChildren(loading("Running…"));
  try {
    out.replaceChildren(resultView(await call(), name));
  } catch (err) {
    out.replaceChildren(errorBox(err));
  }
}

// -- the page ---------------------------------------------------------------------------------------
export async function render(main, args, query, isCurrent) {
  main.append(h("h2", {}, "Analyst queries"),
    h("p", { class: "muted" }, "Read-only: the server refuses writes and anything outside the analysts' allow-list. Needs a key with the analyst role."));
  const named = section("Named queries", loading());
  const adhoc = section("Cypher");
  main.append(named, adhoc);

  const cypherOut = h("div", { class: "out", "aria-live": "polite" });
  const text = h("textarea", { id: "cypher-text", name: "cypher", rows: 5, spellcheck: "false" }, query.get("cypher") || "");
  adhoc.append(h("form", { onsubmit: (event) => {
    event.preventDefault();
    runAndShow(cypherOut, () => api("/graph/query", { method: "POST", body: { query: text.value } }), "query");
  } }, h("div", { class: "field" }, h("label", { for: "cypher-text" }, "Read-only Cypher"), text),
  h("button", { type: "submit" }, "Run Cypher")), cypherOut);

  let list;
  try {
    list = await api("/graph/queries");
  } catch (err) {
    if (isCurrent()) named.lastChild.replaceWith(errorBox(err));
    return;
  }
  if (!isCurrent()) return;
  const picker = h("select", { id: "query-name", name: "query" },
    list.map((q) => h("option", { value: q.name, selected: q.name === query.get("name") }, q.name)));
  const formBox = h("div", {});
  const out = h("div", { class: "out", "aria-live": "polite" });
  const showForm = () => {
    const q = list.find((one) => one.name === picker.value);
    if (!q) return;
    const form = h("form", { id: "query-form", onsubmit: (event) => {
      event.preventDefault();
      let params;
      try { params = readParams(form); } catch (err) { out.replaceChildren(errorBox(err)); return; }
      runAndShow(out, () => api(`/graph/queries/${encodeURIComponent(q.name)}`, { method: "POST", body: { params } }), q.name);
    } }, h("p", {}, q.description),
    q.params.length ? h("fieldset", {}, h("legend", {}, "Parameters"), q.params.map((p) => paramField(q, p))) : h("p", { class: "muted" }, "No parameters."),
    h("button", { type: "submit" }, "Run query"));
    formBox.replaceChildren(form);
    out.replaceChildren();
  };
  picker.addEventListener("change", showForm);
  named.lastChild.replaceWith(list.length
    ? h("div", {}, h("div", { class: "field" }, h("label", { for: "query-name" }, "Named query"), picker), formBox, out)
    : h("p", {}, "The server has no named queries (cypher/analyst/ is empty)."));
  showForm();
  if (query.get("cypher")) text.focus();
}
