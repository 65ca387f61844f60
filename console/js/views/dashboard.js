// The supervisor's view of a number: the queue and waiting times, first-response and resolution
// times, satisfaction, and messages per day by source, drawn as inline SVG (no chart library).
// Every chart has its figures beside it as a table for screen readers.

import { h, replace, svg } from "../dom.js";
import { t } from "../i18n.js";

const SOURCES = ["customer", "bot", "agent", "business_app", "campaign", "history"];
const COLOURS = { customer: "#1d4d91", bot: "#6b4fc4", agent: "#0d6b57", business_app: "#b7791f", campaign: "#b83280", history: "#8a94a3" };

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

export function renderDashboard(main, context) {
  const { state, api } = context;
  let days = 7;
  const body = h("div", { class: "dashboard-body" });
  const range = h("select", { id: "dashboard-days", onchange: (e) => { days = Number(e.target.value); draw(); } },
    [1, 7, 14, 30].map((d) => h("option", { value: d, selected: d === days }, d === 1 ? t("dashboard.today") : t("dashboard.days", { days: d }))));
  replace(main, h("section", { class: "dashboard-page", "aria-labelledby": "dashboard-title" },
    h("div", { class: "dashboard-head" },
      h("h1", { id: "dashboard-title" }, t("dashboard.title")),
      h("label", { class: "inline-label", for: "dashboard-days" }, t("dashboard.period")), range),
    body));

  let drawn = "";
  async function draw() {
    if (!state.number) return replace(body, h("p", { class: "muted" }, t("inbox.empty")));
    try {
      const figures = await api.dashboard(state.number, days);
      const key = JSON.stringify({ ...figures, generated_at: null, queue: { ...figures.queue, waiting: null } });
      if (key === drawn) return updateWaiting(figures);
      drawn = key;
      replace(body,
        h("div", { class: "kpis" },
          kpi("queue", t("dashboard.queue"), String(figures.queue.length), t("dashboard.longest_wait", { time: duration(figures.queue.waiting.max_s) })),
          kpi("first-response", t("dashboard.first_response"), duration(figures.first_response.median_s), t("dashboard.p90", { time: duration(figures.first_response.p90_s), count: figures.first_response.count })),
          kpi("resolution", t("dashboard.resolution"), duration(figures.resolution.median_s), t("dashboard.p90", { time: duration(figures.resolution.p90_s), count: figures.resolution.count })),
          kpi("csat", t("dashboard.csat"), figures.satisfaction.average === null ? "—" : `${figures.satisfaction.average} / 3`, t("dashboard.responses", { count: figures.satisfaction.responses }))),
        h("div", { class: "charts" },
          h("article", { class: "card chart-card" }, h("h2", { id: "messages-chart-title" }, t("dashboard.messages_per_day")), messagesChart(figures.messages_per_day)),
          h("article", { class: "card chart-card" }, h("h2", { id: "csat-chart-title" }, t("dashboard.csat_distribution")), csatChart(figures.satisfaction.distribution))),
        figures.sampled ? h("p", { class: "muted small" }, t("dashboard.sampled", { count: figures.chats_considered })) : null);
    } catch (error) {
      context.notify(context.explain(error), "error");
    }
  }

  function updateWaiting(figures) {
    const note = body.querySelector("[data-kpi=queue] .kpi-note");
    if (note) note.textContent = t("dashboard.longest_wait", { time: duration(figures.queue.waiting.max_s) });
  }

  // The figures read many chats: live changes redraw them at most every 10 s.
  let last = 0;
  draw();
  return {
    refresh() {
      if (Date.now() - last < 10_000) return;
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

function messagesChart(perDay) {
  const width = 640, height = 240, left = 36, bottom = 28, top = 10;
  const totals = perDay.map((d) => SOURCES.reduce((sum, s) => sum + d[s], 0));
  const max = Math.max(1, ...totals);
  const step = (width - left) / perDay.length;
  const bar = Math.min(36, step * 0.7);
  const y = (value) => top + (height - top - bottom) * (1 - value / max);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-labelledby": "messages-chart-title" });
  for (const tick of [0, Math.ceil(max / 2), max]) {
    chart.append(svg("line", { x1: left, x2: width, y1: y(tick), y2: y(tick), class: "grid" }),
      svg("text", { x: left - 6, y: y(tick) + 4, class: "axis", "text-anchor": "end" }, String(tick)));
  }
  perDay.forEach((day, i) => {
    let base = 0;
    const x = left + i * step + (step - bar) / 2;
    for (const source of SOURCES) {
      if (!day[source]) continue;
      chart.append(svg("rect", { x, y: y(base + day[source]), width: bar, height: y(base) - y(base + day[source]), fill: COLOURS[source] },
        svg("title", {}, `${day.day} · ${t(`source.${source}`)}: ${day[source]}`)));
      base += day[source];
    }
    if (perDay.length <= 14 || i % Math.ceil(perDay.length / 10) === 0) {
      chart.append(svg("text", { x: x + bar / 2, y: height - 8, class: "axis", "text-anchor": "middle" }, day.day.slice(5)));
    }
  });
  const legend = h("ul", { class: "legend" }, SOURCES.map((s) =>
    h("li", {}, svg("svg", { width: 12, height: 12, "aria-hidden": "true" }, svg("rect", { width: 12, height: 12, rx: 2, fill: COLOURS[s] })), t(`source.${s}`))));
  const table = h("table", { class: "visually-hidden" },
    h("caption", {}, t("dashboard.messages_per_day")),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("dashboard.day")), SOURCES.map((s) => h("th", { scope: "col" }, t(`source.${s}`))))),
    h("tbody", {}, perDay.map((d) => h("tr", {}, h("th", { scope: "row" }, d.day), SOURCES.map((s) => h("td", {}, String(d[s])))))));
  return h("div", {}, chart, legend, table);
}

function csatChart(distribution) {
  const rows = [["3", t("dashboard.csat_great")], ["2", t("dashboard.csat_okay")], ["1", t("dashboard.csat_poor")]];
  const max = Math.max(1, ...rows.map(([k]) => distribution[k] || 0));
  const width = 320, row = 40, label = 90;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${rows.length * row}`, class: "chart", role: "img", "aria-labelledby": "csat-chart-title" });
  rows.forEach(([key, name], i) => {
    const count = distribution[key] || 0;
    const length = ((width - label - 40) * count) / max;
    chart.append(
      svg("text", { x: 0, y: i * row + 24, class: "axis label" }, name),
      svg("rect", { x: label, y: i * row + 10, width: Math.max(length, 2), height: 20, rx: 3, class: `csat-${key}` }),
      svg("text", { x: label + Math.max(length, 2) + 6, y: i * row + 25, class: "axis" }, String(count)));
  });
  const table = h("table", { class: "visually-hidden" }, h("caption", {}, t("dashboard.csat_distribution")),
    h("tbody", {}, rows.map(([key, name]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, String(distribution[key] || 0))))));
  return h("div", {}, chart, table);
}
