// Model and graph health: is Neo4j reachable, what the graph holds, which model answers and how it
// scored when it was trained.

import { api, errorBox, fmt, h, loading, section, table } from "../dom.js";
import { barChart, PALETTE } from "../svg.js";

const PARTS = [["valid", "validation", PALETTE.sky], ["test", "test", PALETTE.vermillion]];

export async function render(main, args, query, isCurrent) {
  main.append(h("h2", {}, "Model and graph"));
  const box = main.appendChild(loading());
  const [health, model] = await Promise.allSettled([api("/health"), api("/model")]);
  if (!isCurrent()) return;
  const parts = [];
  if (health.status === "fulfilled") {
    const hl = health.value;
    parts.push(section("Service",
      h("p", { id: "status", class: hl.status === "ok" ? "ok" : "warning" },
        hl.status === "ok" ? "✔ Everything answers." : "⚠ Degraded: Neo4j does not answer; recommendations come from the model and the graph in memory, writes are refused."),
      table(["", ""], [["Neo4j reachable", hl.neo4j_reachable ? "yes" : "no"], ["graph loaded in memory", hl.graph_loaded ? "yes" : "no"],
        ["graph reloads", fmt.int(hl.generation)], ["serving since", fmt.when(hl.started_at)],
        ["users placed live (fold-in)", fmt.int(hl.live.users_folded_in)], ["products added live", fmt.int(hl.live.products_added)]])),
    section("Graph", hl.graph ? table(["what", "count"], Object.entries(hl.graph).map(([k, n]) => [k.replaceAll("_", " "), fmt.int(n)]), { numeric: [1] })
      : h("p", { class: "warning" }, "The graph is not loaded yet.")));
  } else parts.push(errorBox(health.reason));
  if (model.status === "fulfilled") parts.push(modelSection(model.value));
  else parts.push(section("Model", errorBox(model.reason)));
  box.replaceWith(...parts);
}

function modelSection(card) {
  const m = card.metrics || {};
  const keys = [...new Set(PARTS.flatMap(([part]) => Object.keys(m[part] || {})))]
    .filter((k) => /@\d+$/.test(k)).sort((a, b) => a.split("@")[0].localeCompare(b.split("@")[0]) || parseInt(a.split("@")[1], 10) - parseInt(b.split("@")[1], 10));
  const parts = [
    table(["", ""], [["model", card.kind], ["trained on snapshot", card.snapshot_id], ["saved", fmt.when(card.created_at)],
      ["users × products × categories", `${fmt.int(card.users)} × ${fmt.int(card.products)} × ${fmt.int(card.categories)}`],
      ["embedding size", fmt.int(card.dim)], ["best epoch", m.best_epoch ?? "–"], ["epochs run", m.epochs_run ?? "–"],
      ["training time", m.train_seconds !== undefined ? `${m.train_seconds} s` : "–"]]),
  ];
  if (keys.length) {
    const present = PARTS.filter(([part]) => m[part]);
    parts.push(h("h3", {}, "Evaluation at training time"),
      table(["metric", ...present.map(([, label]) => label)], keys.map((k) => [k, ...present.map(([part]) => fmt.num(m[part][k]))]),
        { numeric: present.map((_, i) => i + 1) }),
      h("figure", { id: "chart-metrics" }, barChart(keys.map((k) => ({ label: k, values: Object.fromEntries(present.map(([part, label]) => [label, m[part][k] || 0])) })),
        present.map(([, label, colour]) => ({ name: label, colour })), { title: "Ranking quality (higher is better)", format: (v) => v.toFixed(3) }),
      h("figcaption", {}, "Recall and NDCG at each cut-off on the held-out interactions (full ranking). `graphrec evaluate` adds baselines and cold-start slices.")));
  } else parts.push(h("p", { class: "muted" }, "This artifact holds no evaluation numbers (run graphrec evaluate for them)."));
  return section("Model", ...parts);
}
