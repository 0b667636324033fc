// Small helpers shared by the pages: building elements (text only, never HTML strings: names in
// the graph are data, not markup), calling the API with the session's key, formatting numbers.

const KEY = "graphrec.apiKey";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// -- the API key: once per browser session (sessionStorage: gone when the tab closes) -----------
export function getKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// fetch against this server only (relative URLs), the key in X-API-Key; errors carry the API's
// own one-sentence ``detail``.
export async function api(path, { method = "GET", body, params } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    for (const one of Array.isArray(v) ? v : [v]) {
      if (one !== undefined && one !== null && one !== "") url.searchParams.append(k, one);
    }
  }
  const headers = { Accept: "application/json" };
  const key = getKey();
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url.pathname + url.search, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "the GraphRec server did not answer (is it running?)");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    let detail = (data && data.detail) || `${response.status} ${response.statusText}`;
    if (response.status === 401) detail += " — enter an API key at the top of the page";
    throw new ApiError(response.status, detail);
  }
  return data;
}

export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err instanceof ApiError || err instanceof Error ? err.message : String(err));
}

export function loading(text = "Loading…") {
  return h("p", { class: "muted", role: "status" }, text);
}

// -- formatting ---------------------------------------------------------------------------------
export const fmt = {
  int: (x) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en")),
  num: (x, digits = 4) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits)),
  pct: (x, digits = 2) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(digits)}%`),
  pp: (x, digits = 2) => (x === null || x === undefined ? "–" : `${x >= 0 ? "+" : ""}${(100 * x).toFixed(digits)} pp`),
  money: (x) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en", { maximumFractionDigits: 2, minimumFractionDigits: 2 })),
  p: (x) => (x === null || x === undefined ? "–" : x < 0.001 ? "< 0.001" : Number(x).toFixed(3)),
  when: (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, " UTC") : "–"),
};

// A table from column names and rows of cells (strings, numbers or nodes).
export function table(columns, rows, { caption, numeric = [] } = {}) {
  const right = new Set(numeric);
  return h("div", { class: "table-wrap" },
    h("table", {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c, i) => h("th", { scope: "col", class: right.has(i) ? "num" : null }, c)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell, i) => h("td", { class: right.has(i) ? "num" : null }, cell)))))));
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}
