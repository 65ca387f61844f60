// What messages cost (supervisors and admins): the cost ledger of the chosen number over a period,
// grouped by category, day or number, beside what the phone app's replies would have cost had the
// API sent them. Drawn as inline SVG (no chart library), with the figures as a table for screen readers.

import { h, replace, svg } from "../dom.js";
import { locale, t } from "../i18n.js";

const COLOURS = { api: "#1d4d91", app: "#b7791f" };
const DAY_MS = 86_400_000;

export function money(amount, currency) {
  const digits = amount !== 0 && Math.abs(amount) < 1 ? 4 : 2;
  try {
    return new Intl.NumberFormat(locale(), { style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits }).format(amount);
  } catch {
    return `${amount.toFixed(digits)} ${currency}`;
  }
}

function utcDay(date) {
  return date.toISOString().slice(0, 10);
}

export function renderCosts(main, context) {
  const { state, api } = context;
  let days = 7;
  let groupBy = "category";
  const body = h("div", { class: "dashboard-body", "aria-live": "polite" });
  const range = h("select", { id: "costs-days", onchange: (e) => { days = Number(e.target.value); draw(); } },
    [1, 7, 30].map((d) => h("option", { value: d, selected: d === days }, d === 1 ? t("dashboard.today") : t("dashboard.days", { days: d }))));
  const grouping = h("select", { id: "costs-group", onchange: (e) => { groupBy = e.target.value; draw(); } },
    ["category", "day", "number"].map((g) => h("option", { value: g, selected: g === groupBy }, t(`costs.by_${g}`))));
  replace(main, h("section", { class: "dashboard-page", "aria-labelledby": "costs-title" },
    h("div", { class: "dashboard-head" },
      h("h1", { id: "costs-title" }, t("costs.title")),
      h("label", { class: "inline-label", for: "costs-days" }, t("dashboard.period")), range,
      h("label", { class: "inline-label", for: "costs-group" }, t("costs.group")), grouping),
    body));

  async function draw() {
    if (!state.number) return replace(body, h("p", { class: "muted" }, t("inbox.empty")));
    const today = new Date();
    const from = utcDay(new Date(today.getTime() - (days - 1) * DAY_MS));
    const number = groupBy === "number" ? null : state.number;
    try {
      const report = await api.costs({ from, to: utcDay(today), number, groupBy });
      const totals = report.totals;
      replace(body,
        h("div", { class: "kpis" },
          kpi("cost", t("costs.api_cost"), money(totals.cost, report.currency), t("costs.billable", { count: totals.billable_messages, total: totals.messages })),
          kpi("app", t("costs.app_if_api"), money(report.app_messages_if_sent_by_api, report.currency), t("costs.app_messages", { count: totals.app_messages })),
          kpi("estimated", t("costs.estimated"), String(totals.estimated_messages), t("costs.unknown_country", { count: totals.unknown_country_messages }))),
        h("article", { class: "card chart-card" },
          h("h2", { id: "costs-chart-title" }, t("costs.chart", { group: t(`costs.by_${groupBy}`) })),
          costsChart(report, groupBy)),
        h("p", { class: "muted small" }, t("costs.rate_card", { version: report.rate_card.version, retrieved: report.rate_card.retrieved })),
        report.complete ? null : h("p", { class: "muted small" }, t("costs.incomplete")));
    } catch (error) {
      if (error.status === 403) return replace(body, h("p", { class: "muted" }, t("costs.forbidden")));
      context.notify(context.explain(error), "error");
    }
  }

  draw();
  let last = 0;
  return {
    refresh() {
      if (Date.now() - last < 30_000) return; // the ledger moves with deliveries: a redraw every 30 s is plenty
      last = Date.now();
      draw();
    },
    dispose() {},
  };
}

function kpi(id, label, value, note) {
  return h("article", { class: "card kpi", dataset: { kpi: id } },
    h("h2", { class: "kpi-label" }, label), h("p", { class: "kpi-value" }, value), h("p", { class: "kpi-note muted small" }, note));
}

function groupLabel(key, groupBy) {
  if (groupBy !== "category") return key;
  const name = t(`costs.category.${key}`);
  return name === `costs.category.${key}` ? key : name; // a category this console has no name for
}

function costsChart(report, groupBy) {
  const groups = report.groups;
  if (!groups.length) return h("p", { class: "muted" }, t("costs.none"));
  const row = 44, label = 150, width = 640, bar = 14;
  const max = Math.max(0.0001, ...groups.flatMap((g) => [g.cost, g.app_messages_if_sent_by_api]));
  const scale = (value) => ((width - label - 90) * value) / max;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${groups.length * row + 8}`, class: "chart", role: "img", "aria-labelledby": "costs-chart-title" });
  groups.forEach((group, i) => {
    const y = i * row + 6;
    const name = groupLabel(group.key, groupBy);
    chart.append(svg("text", { x: 0, y: y + 20, class: "axis label" }, name));
    [["api", group.cost], ["app", group.app_messages_if_sent_by_api]].forEach(([kind, value], j) => {
      const length = Math.max(scale(value), value > 0 ? 2 : 0);
      chart.append(
        svg("rect", { x: label, y: y + j * (bar + 2), width: length, height: bar, rx: 2, fill: COLOURS[kind] },
          svg("title", {}, `${name} · ${t(`costs.series.${kind}`)}: ${money(value, report.currency)}`)),
        svg("text", { x: label + length + 6, y: y + j * (bar + 2) + 11, class: "axis" }, money(value, report.currency)));
    });
  });
  const legend = h("ul", { class: "legend" }, ["api", "app"].map((kind) =>
    h("li", {}, svg("svg", { width: 12, height: 12, "aria-hidden": "true" }, svg("rect", { width: 12, height: 12, rx: 2, fill: COLOURS[kind] })), t(`costs.series.${kind}`))));
  const table = h("table", { class: "visually-hidden" },
    h("caption", {}, t("costs.chart", { group: t(`costs.by_${groupBy}`) })),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t(`costs.by_${groupBy}`)), h("th", { scope: "col" }, t("costs.series.api")),
      h("th", { scope: "col" }, t("costs.billable_header")), h("th", { scope: "col" }, t("costs.series.app")))),
    h("tbody", {}, groups.map((g) => h("tr", {}, h("th", { scope: "row" }, groupLabel(g.key, groupBy)),
      h("td", {}, money(g.cost, report.currency)), h("td", {}, String(g.billable_messages)),
      h("td", {}, money(g.app_messages_if_sent_by_api, report.currency))))));
  return h("div", { class: "costs-chart" }, chart, legend, table);
}
