// Campaigns: the list, and each campaign's report in words, tables and two charts (cumulative
// conversion with 95% bands, the funnel). Needs a key with the marketer role.

import { api, fmt, h, loading, section, table } from "../dom.js";
import { barChart, lineChart, VARIANT_COLOURS } from "../svg.js";

const VARIANTS = ["treatment", "control"];

export async function render(main, args, query, isCurrent) {
  if (args.length) return renderReport(main, args[0], isCurrent);
  main.append(h("h2", {}, "Campaigns"));
  const box = main.appendChild(loading());
  const { campaigns } = await api("/campaigns");
  if (!isCurrent()) return;
  box.replaceWith(campaigns.length
    ? table(["campaign", "name", "status", "from", "to", "offer", "treatment", "control"], campaigns.map((c) => [
      h("a", { href: `#/campaigns/${encodeURIComponent(c.campaign_id)}` }, c.campaign_id), c.name,
      c.active ? "running" : new Date(c.start) > new Date() ? "not started" : "ended",
      fmt.when(c.start), fmt.when(c.end), offerText(c.offer), fmt.int(c.counts.treatment), fmt.int(c.counts.control)]),
    { caption: `${campaigns.length} campaign(s), newest first`, numeric: [6, 7] })
    : h("p", {}, "No campaigns yet. Marketers create them with POST /campaigns or graphrec campaign create."));
}

function offerText(offer) {
  return offer.kind === "percent_off" ? `${offer.value}% off` : `${fmt.money(offer.value)} off`;
}

function ci(pair, f = fmt.pct) {
  return pair ? `${f(pair[0])} to ${f(pair[1])}` : "–";
}

// The headline a marketer reads first: did the offer change conversion, and how sure are we.
function headline(report) {
  const t = report.variants.treatment, c = report.variants.control, lift = report.lift.cvr;
  const parts = [`Treatment: ${fmt.int(t.buyers)} of ${fmt.int(t.users)} users bought (${fmt.pct(t.cvr)}); control: ${fmt.int(c.buyers)} of ${fmt.int(c.users)} (${fmt.pct(c.cvr)}).`];
  if (lift.absolute === null || lift.absolute === undefined) parts.push(`The lift cannot be computed yet${lift.note ? `: ${lift.note}` : ""}.`);
  else {
    parts.push(`Lift: ${fmt.pp(lift.absolute)} (95% interval ${ci(lift.ci95, fmt.pp)}).`);
    parts.push(lift.significant ? `That is unlikely to be chance (p = ${fmt.p(lift.p_value)}).`
      : `That could well be chance (p = ${fmt.p(lift.p_value)}): the interval includes no effect.`);
  }
  return parts.join(" ");
}

function lastCi(report, variant) {
  const series = report.timeline[variant];
  const n = series.cvr.length - 1;
  return n >= 0 && series.ci95_low[n] !== null ? [series.ci95_low[n], series.ci95_high[n]] : null;
}

async function renderReport(main, campaignId, isCurrent) {
  main.append(h("p", {}, h("a", { href: "#/campaigns" }, "← all campaigns")), h("h2", { id: "campaign-title" }, `Campaign ${campaignId}`));
  const box = main.appendChild(loading());
  const [campaign, report] = await Promise.all([
    api(`/campaigns/${encodeURIComponent(campaignId)}`), api(`/campaigns/${encodeURIComponent(campaignId)}/report`)]);
  if (!isCurrent()) return;
  document.getElementById("campaign-title").textContent = `${campaign.name} (${campaign.campaign_id})`;
  const v = report.variants;
  const parts = [
    h("p", { class: "muted" }, `${offerText(campaign.offer)} on ${fmt.int(campaign.promoted.length)} product(s)`,
      campaign.category_id ? ` (category ${campaign.category_id})` : "", `, ${fmt.when(report.window.start)} to ${fmt.when(report.window.end)}; `,
      `audience chosen by ${campaign.audience.policy}, ${fmt.pct(campaign.control_fraction, 0)} held out as control.`),
    section("Result", h("p", { class: "headline", id: "headline" }, headline(report)),
      report.srm.ok ? null : h("p", { class: "warning" }, `Sample-ratio mismatch (p = ${fmt.p(report.srm.p_value)}): the split is not the one requested; check the assignment before trusting the lift.`)),
    section("Charts", h("div", { class: "charts" },
      h("figure", { id: "chart-conversion" }, conversionChart(report),
        h("figcaption", {}, "Share of each group who bought a promoted product, over time, with 95% bands.")),
      h("figure", { id: "chart-funnel" }, barChart(["impressions", "clicks", "purchases"].map((stage) => ({
        label: stage, values: Object.fromEntries(VARIANTS.map((x) => [x, report.funnel[x][stage]])) })),
      VARIANTS.map((x) => ({ name: x, colour: VARIANT_COLOURS[x] })), { title: "Funnel", log: true, format: fmt.int }),
      h("figcaption", {}, "Impressions, clicks and purchases per group (control users see no offer, so few impressions).")))),
    section("Per group", table(["", "users", "seen an offer", "impressions", "clicks", "CTR", "buyers", "CVR", "CVR 95% CI", "revenue", "offer cost", "ROI"],
      VARIANTS.map((x) => [x, fmt.int(v[x].users), fmt.int(v[x].exposed_users), fmt.int(v[x].impressions), fmt.int(v[x].clicks), fmt.pct(v[x].ctr),
        fmt.int(v[x].buyers), fmt.pct(v[x].cvr), ci(lastCi(report, x)), fmt.money(v[x].revenue), fmt.money(v[x].cost),
        v[x].roi === null || v[x].roi === undefined ? "–" : `${fmt.num(v[x].roi, 2)}×`]),
      { numeric: [1, 2, 3, 4, 5, 6, 7, 9, 10, 11], caption: "ROI = (extra revenue over control − offer cost) / offer cost" })),
    section("Lift of treatment over control", table(["measure", "treatment", "control", "difference", "95% interval", "relative", "p-value"],
      [["conversion rate", fmt.pct(report.lift.cvr.treatment), fmt.pct(report.lift.cvr.control), fmt.pp(report.lift.cvr.absolute),
        ci(report.lift.cvr.ci95, fmt.pp), fmt.pct(report.lift.cvr.relative, 1), fmt.p(report.lift.cvr.p_value)],
      ["revenue per user", fmt.money(report.lift.revenue_per_user.treatment), fmt.money(report.lift.revenue_per_user.control),
        fmt.money(report.lift.revenue_per_user.absolute), ci(report.lift.revenue_per_user.ci95, fmt.money),
        fmt.pct(report.lift.revenue_per_user.relative, 1), fmt.p(report.lift.revenue_per_user.p_value)]], { numeric: [1, 2, 3, 5, 6] })),
    section("Segments", table(["segment", "treatment CVR", "control CVR", "difference", "95% interval"], report.segments.map((seg) => seg.suppressed
      ? [seg.segment.replaceAll("_", " "), "withheld", "withheld", seg.reason, ""]
      : [seg.segment.replaceAll("_", " "), fmt.pct(seg.variants.treatment.cvr), fmt.pct(seg.variants.control.cvr), fmt.pp(seg.lift.cvr.absolute), ci(seg.lift.cvr.ci95, fmt.pp)]))),
  ];
  if (report.notes.length) parts.push(section("Notes", h("ul", {}, report.notes.map((n) => h("li", {}, n)))));
  box.replaceWith(...parts);
}

function conversionChart(report) {
  const ts = report.timeline.ts.map((t) => new Date(t));
  return lineChart(VARIANTS.map((x) => ({
    name: `${x} (n=${fmt.int(report.variants[x].users)})`, colour: VARIANT_COLOURS[x],
    points: ts.map((t, i) => ({ t, y: report.timeline[x].cvr[i], lo: report.timeline[x].ci95_low[i], hi: report.timeline[x].ci95_high[i] })) })),
  { title: "Cumulative conversion", yLabel: "bought (% of group)", format: (v) => `${(100 * v).toFixed(1)}%` });
}
