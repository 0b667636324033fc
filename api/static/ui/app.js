// The dashboard's router: #/users[/ID], #/campaigns[/ID], #/queries, #/health. Each page module
// exports render(main, args, query) and draws into <main>.

import { clear, errorBox, getKey, h, setKey } from "./dom.js";
import * as users from "./pages/users.js";
import * as campaigns from "./pages/campaigns.js";
import * as queries from "./pages/queries.js";
import * as health from "./pages/health.js";

const PAGES = { users, campaigns, queries, health };

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, search] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || "users", args: parts.slice(1), query: new URLSearchParams(search || "") };
}

let generation = 0;

async function route() {
  const { page, args, query } = parseHash();
  const main = document.getElementById("main");
  const mine = ++generation;
  delete document.body.dataset.ready;  // set again, with the route drawn, when the page is done
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(main);
  const module = PAGES[page];
  if (!module) {
    main.append(h("h2", {}, "Not found"), h("p", {}, `No page called “${page}”.`));
    return;
  }
  try {
    // A page that finishes after the user moved on draws nothing (isCurrent() is false then).
    await module.render(main, args, query, () => mine === generation);
  } catch (err) {
    if (mine === generation) main.append(errorBox(err));
  }
  if (mine === generation) {
    document.body.dataset.route = window.location.hash;
    document.body.dataset.ready = page;
  }
}

function showKeyState() {
  document.getElementById("key-state").textContent = getKey() ? "key set for this session" : "no key set";
}

function setup() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setKey(input.value.trim());
    input.value = "";
    showKeyState();
    route();
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    setKey("");
    showKeyState();
    route();
  });
  showKeyState();
  window.addEventListener("hashchange", () => {
    route();
    document.getElementById("main").focus({ preventScroll: true });
  });
  route();
}

setup();
