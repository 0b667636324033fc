// A user's page: search; recommendations with their explanation paths drawn; offers; friends and
// recent purchases.

import { api, clear, errorBox, fmt, h, loading, section, table } from "../dom.js";
import { pathGraph } from "../svg.js";
import { pathCypher } from "./queries.js";

const KIND_TO_PARAM = { User: "user", Product: "product", Category: "category" };

function searchForm(value = "") {
  const input = h("input", { id: "user-q", name: "q", type: "search", required: true, value, spellcheck: "false",
    autocomplete: "off", "aria-describedby": "user-q-help" });
  return h("form", { class: "inline", role: "search", onsubmit: (event) => {
    event.preventDefault();
    window.location.hash = `#/users?q=${encodeURIComponent(input.value.trim())}`;
  } },
  h("label", { for: "user-q" }, "User id or name"), input, h("button", { type: "submit" }, "Find"),
  h("span", { id: "user-q-help", class: "muted" }, "an exact id, the start of one, or part of a name"));
}

export async function render(main, args, query, isCurrent) {
  if (args.length) return renderUser(main, args[0], isCurrent);
  main.append(h("h2", {}, "Users"), searchForm(query.get("q") || ""));
  const q = query.get("q");
  if (!q) {
    main.append(h("p", { class: "muted" }, "Find a user to see their recommendations, why each is recommended, their friends and purchases."));
    return;
  }
  const box = main.appendChild(loading());
  const found = await api("/users", { params: { q, limit: 50 } });
  if (!isCurrent()) return;
  box.replaceWith(found.users.length
    ? table(["user", "name", "friends", "purchases"], found.users.map((u) => [
      h("a", { href: `#/users/${encodeURIComponent(u.user_id)}` }, u.user_id), u.name || "–", fmt.int(u.friends), fmt.int(u.purchases)]),
    { caption: `${found.users.length} user(s) matching “${q}”`, numeric: [2, 3] })
    : h("p", {}, `No user matches “${q}”.`));
}

function userTitle(profile, userId) {
  return profile && profile.name ? `${profile.name} (user ${userId})` : `User ${userId}`;
}

async function renderUser(main, userId, isCurrent) {
  main.append(searchForm(), h("h2", { id: "user-title" }, `User ${userId}`));
  const recsBox = section("Recommendations", loading());
  const offersBox = section("Offers");
  const friendsBox = section("Friends", loading());
  const boughtBox = section("Recent purchases", loading());
  main.append(h("div", { class: "columns" }, h("div", { class: "wide" }, recsBox, offersBox),
    h("div", { class: "narrow" }, friendsBox, boughtBox)));
  const [profile, recs] = await Promise.allSettled([
    api(`/users/${encodeURIComponent(userId)}`, { params: { limit: 50 } }),
    api(`/users/${encodeURIComponent(userId)}/recommendations`, { params: { k: 10, explain: "true" } }),
  ]);
  if (!isCurrent()) return;
  if (profile.status === "fulfilled") {
    document.getElementById("user-title").textContent = userTitle(profile.value, userId);
    fillProfile(friendsBox, boughtBox, profile.value);
  } else {
    for (const box of [friendsBox, boughtBox]) box.lastChild.replaceWith(errorBox(profile.reason));
  }
  if (recs.status === "fulfilled") {
    const names = await pathNames(recs.value.items.flatMap((i) => i.explanations), userId);
    if (!isCurrent()) return;
    recsBox.lastChild.replaceWith(recommendationList(recs.value, names, userId));
  } else {
    recsBox.lastChild.replaceWith(errorBox(recs.reason));
  }
  offersBox.append(h("p", { class: "muted" }, "Offers come from the campaigns this user is in (treatment group). Showing them counts as serving them: it uses up the user's offers for today (the frequency cap)."),
    h("button", { type: "button", id: "load-offers", onclick: (event) => loadOffers(offersBox, event.target, userId) }, "Show this user's offers"));
}

// Names of every node on the paths, in one request; the user themselves is "you".
async function pathNames(explanations, userId) {
  const params = { user: [], product: [], category: [] };
  for (const exp of explanations) {
    for (const step of exp.path.filter((_, i) => i % 2 === 0)) {
      const key = KIND_TO_PARAM[step.label];
      if (key && !params[key].includes(step.id)) params[key].push(step.id);
    }
  }
  let found = { users: {}, products: {}, categories: {} };
  if (params.user.length || params.product.length || params.category.length) {
    try { found = await api("/names", { params }); } catch { /* ids stand in for names */ }
  }
  return (label, id) => {
    if (label === "User" && id === userId) return "you";
    const table = { User: found.users, Product: found.products, Category: found.categories }[label] || {};
    return table[id] || `${label.toLowerCase()} ${id}`;
  };
}

function explanationView(exp, names, index) {
  const cypher = pathCypher(exp.path);
  return h("div", { class: "explanation", dataset: { kind: exp.kind } },
    h("p", {}, exp.text),
    h("div", { class: "path-scroll" }, pathGraph(exp.path, names, { title: `Path ${index}: ${exp.text}` })),
    h("details", { class: "cypher" },
      h("summary", {}, "This path as a Cypher query (for analysts)"),
      h("pre", {}, h("code", {}, cypher)),
      h("a", { href: `#/queries?cypher=${encodeURIComponent(cypher)}`, class: "button-link" }, "Run it in Analyst queries")));
}

function recommendationList(result, names, userId) {
  const wrap = h("div", {});
  const source = { model: "the trained model", fold_in: "the model, placed from their friends and purchases (not retrained)",
    popular: "the popularity fallback (the model does not know this user)" }[result.source] || result.source;
  wrap.append(h("p", { class: "muted" }, `From ${source}; model ${result.model}.`));
  for (const warning of result.warnings || []) wrap.append(h("p", { class: "warning" }, warning));
  if (!result.items.length) wrap.append(h("p", {}, "No recommendations."));
  let n = 0;
  wrap.append(h("ol", { class: "recs" }, result.items.map((item) => h("li", { class: "rec", dataset: { productId: item.product_id } },
    h("h3", {}, item.name || `product ${item.product_id}`,
      h("span", { class: "muted" }, ` · better than ${fmt.pct(item.percentile, 1)} of the catalogue for this user`)),
    item.explanations.length ? item.explanations.map((exp) => explanationView(exp, names, ++n))
      : h("p", { class: "muted" }, "No short path in the graph explains this one.")))));
  return wrap;
}

async function loadOffers(box, button, userId) {
  button.disabled = true;
  const status = box.appendChild(loading());
  try {
    const body = await api(`/users/${encodeURIComponent(userId)}/offers`, { params: { k: 3 } });
    const names = await pathNames(body.offers.flatMap((o) => o.explanations), userId);
    const parts = [];
    if (!body.offers.length) {
      parts.push(h("p", {}, body.control_campaigns.length
        ? `No offers: this user is in the control group of ${body.control_campaigns.join(", ")} (by design).`
        : body.capped ? "No offers: today's cap for this user is used up." : "No offers: this user is in no active campaign's treatment group."));
    }
    let n = 0;
    parts.push(h("ul", { class: "recs" }, body.offers.map((offer) => h("li", { class: "rec offer" },
      h("h3", {}, offer.name || offer.product_id, h("span", { class: "muted" }, ` · ${offer.campaign_name}`)),
      h("p", {}, offer.offer.kind === "percent_off" ? `${offer.offer.value}% off` : `${fmt.money(offer.offer.value)} off`,
        offer.price !== null ? ` · ${fmt.money(offer.price)} → ${fmt.money(offer.price_after_offer)}` : "",
        ` · until ${fmt.when(offer.ends_at)}`),
      offer.explanations.map((exp) => explanationView(exp, names, `offer ${++n}`))))));
    parts.push(h("p", { class: "muted" }, `Offers served to this user today: ${body.served_today}.`));
    status.replaceWith(...parts);
  } catch (err) {
    status.replaceWith(errorBox(err));
    button.disabled = false;
  }
}

function fillProfile(friendsBox, boughtBox, profile) {
  const link = (f) => h("a", { href: `#/users/${encodeURIComponent(f.user_id)}` }, f.name ? `${f.name} (${f.user_id})` : `user ${f.user_id}`);
  clear(friendsBox).append(h("h2", {}, `Friends (${fmt.int(profile.friend_count)})`));
  friendsBox.append(profile.friends.length ? h("ul", { class: "people" }, profile.friends.map((f) => h("li", {}, link(f))))
    : h("p", { class: "muted" }, "No friends in the graph."));
  if (profile.friend_count > profile.friends.length) friendsBox.append(h("p", { class: "muted" }, `and ${fmt.int(profile.friend_count - profile.friends.length)} more`));
  if (profile.follows.length) {
    friendsBox.append(h("h3", {}, `Follows (${fmt.int(profile.follow_count)})`), h("ul", { class: "people" }, profile.follows.map((f) => h("li", {}, link(f)))));
  }
  // Purchases come most recent first; a graph without purchase times (Last.fm) lists them by id.
  const timed = profile.purchases.some((p) => p.ts);
  clear(boughtBox).append(h("h2", {}, `${timed ? "Recent purchases" : "Purchases"} (${fmt.int(profile.purchase_count)})`));
  if (!profile.purchases.length) boughtBox.append(h("p", { class: "muted" }, "No purchases in the graph."));
  else if (timed) boughtBox.append(table(["product", "when"], profile.purchases.map((p) => [p.name || p.product_id, p.ts ? fmt.when(p.ts) : "–"])));
  else boughtBox.append(h("p", { class: "muted" }, "The graph has no purchase times."), table(["product"], profile.purchases.map((p) => [p.name || p.product_id])));
  if (profile.purchase_count > profile.purchases.length) boughtBox.append(h("p", { class: "muted" }, `and ${fmt.int(profile.purchase_count - profile.purchases.length)} more`));
}
