// The console: sign in, then the inbox (chats, one conversation, handoff) and the numbers page.
// Hash routes: #/ (inbox), #/chats/<chat id>, #/numbers. Live: the open screen is refreshed every
// 2 s from the API (and at once when the tab comes back), so it always catches up by itself.

import { Api, useApiAt } from "./api.js";
import { connectLive } from "./live.js";
import { clearSession, loadSession, saveSession } from "./auth.js";
import { beginSignIn, finishSignIn, keepFresh, signOutOf } from "./cognito.js";
import { h, replace } from "./dom.js";
import { LANGUAGES, language, setLanguage, t } from "./i18n.js";
import { renderInbox } from "./views/inbox.js";
import { renderDashboard } from "./views/dashboard.js";
import { renderCosts } from "./views/costs.js";
import { mayReadAudit, renderAudit } from "./views/audit.js";
import { renderNumbers } from "./views/numbers.js";
import { renderSignIn } from "./views/signin.js";

const REFRESH_MS = 2000; // without a live stream (or while it is down)
const SAFETY_REFRESH_MS = 15000; // with one: a slow re-read in case a change was missed
const CHANGE_DEBOUNCE_MS = 150;
const NUMBERS_STORE = "coexist.numbers";

const root = document.getElementById("app");
const state = {
  config: { auth: "local", numbers: [] },
  session: null,
  api: null,
  numbers: [],
  number: null,
  me: null, // the agent record of whoever is signed in, if they are an agent
  view: null, // the current screen's { refresh(), dispose() }
  live: false, // the live stream is connected
  stopLive: () => {},
  stopRefresh: () => {}, // deployed: the ID token's silent refresh
};

export function notify(text, kind = "info") {
  const region = document.getElementById(kind === "error" ? "alerts" : "notices");
  if (!region) return;
  const note = h("p", { class: `toast toast-${kind}` }, text);
  region.append(note);
  setTimeout(() => note.remove(), kind === "error" ? 8000 : 4000);
}

export function explain(error) {
  if (error.code === "forbidden") return `${t("error.forbidden")} ${error.message || ""}`.trim();
  if (error.code === "unauthorized") return t("error.unauthorized");
  if (error.code === "network") return t("error.network");
  return error.message || error.code;
}

async function start() {
  document.documentElement.lang = language();
  document.title = t("app.title");
  state.config = await fetch("/config.json").then((r) => r.json()).catch(() => state.config);
  useApiAt(state.config.api);
  if (state.config.auth === "cognito") return startWithCognito();
  const session = loadSession();
  if (session) signIn(session);
  else showSignIn();
}

async function startWithCognito() {
  try {
    const session = await finishSignIn(state.config.cognito);
    if (session) return signIn(session);
  } catch (error) {
    return showSignIn(t(error.code === "state" ? "signin.state_refused" : "signin.cognito_failed"));
  }
  showSignIn();
}

function showSignIn(message) {
  state.view?.dispose();
  state.view = null;
  document.title = t("app.title");
  const cognito = state.config.auth === "cognito" ? () => beginSignIn(state.config.cognito) : null;
  replace(root, renderSignIn({ message, onSession: signIn, languageSwitch, signInWithCognito: cognito }));
}

async function signIn(session) {
  saveSession(session);
  state.session = session;
  state.stopRefresh();
  if (session.kind === "cognito") {
    state.stopRefresh = keepFresh(state.config.cognito, session, () => signOut(t("signin.expired")));
  }
  state.api = new Api(session, () => signOut(t("error.unauthorized")));
  const remembered = JSON.parse(localStorage.getItem(NUMBERS_STORE) || "[]");
  state.numbers = [...new Set([...(state.config.numbers || []), ...remembered])];
  state.number = state.numbers[0] || null;
  await Promise.all([loadMe(), loadNumberLabels()]);
  route();
  state.stopLive();
  state.stopLive = connectLive(state.config.live, session, {
    onChange: changed,
    onState: (connected) => {
      state.live = connected;
      document.body.dataset.live = connected ? "connected" : "polling";
      schedulePolling();
    },
  });
}

let pending = null;
function changed() {
  clearTimeout(pending);
  pending = setTimeout(() => state.view?.refresh(), CHANGE_DEBOUNCE_MS);
}

function signOut(message) {
  state.stopLive();
  state.stopLive = () => {};
  state.stopRefresh();
  state.stopRefresh = () => {};
  if (state.session?.kind === "cognito" && !message) signOutOf(state.config.cognito, state.session); // leaves the page
  clearSession();
  state.session = state.api = state.me = null;
  location.hash = "";
  showSignIn(message);
}

async function loadMe() {
  state.me = null;
  if (!state.session.agentId) return;
  try {
    const agents = await state.api.agents();
    state.me = agents.items.find((a) => a.agent_id === state.session.agentId) || null;
  } catch {
    state.me = null;
  }
}

async function loadNumberLabels() {
  // The picker shows the phone number people know rather than Meta's id, when the API has it.
  state.numberLabels = {};
  await Promise.all(state.numbers.map(async (id) => {
    try {
      const number = await state.api.number(id);
      if (number.display_phone_number) state.numberLabels[id] = `+${number.display_phone_number}`;
    } catch {
      // an unknown number keeps its id as its label
    }
  }));
}

export function rememberNumber(id) {
  if (!state.numbers.includes(id)) state.numbers.push(id);
  const remembered = JSON.parse(localStorage.getItem(NUMBERS_STORE) || "[]");
  if (!remembered.includes(id)) localStorage.setItem(NUMBERS_STORE, JSON.stringify([...remembered, id]));
}

function languageSwitch() {
  return h("label", { class: "language" },
    h("span", { class: "visually-hidden" }, t("nav.language")),
    h("select", { "aria-label": t("nav.language"), onchange: (e) => { setLanguage(e.target.value); rerender(); } },
      Object.entries(LANGUAGES).map(([code, name]) => h("option", { value: code, selected: code === language() }, name))));
}

function rerender() {
  document.title = t("app.title");
  if (state.session) route();
  else showSignIn();
}

function availability() {
  if (!state.me) return h("span", { class: "agent-chip muted" }, state.session.agentId || t("agent.unknown"));
  const available = state.me.status === "available";
  return h("button", {
    type: "button", class: `availability ${available ? "is-available" : "is-away"}`, "aria-pressed": String(available),
    title: t("agent.status"),
    onclick: async () => {
      try {
        state.me = await state.api.setStatus(state.me.agent_id, available ? "away" : "available");
        route();
      } catch (error) {
        notify(explain(error), "error");
      }
    },
  }, h("span", { class: "dot", "aria-hidden": "true" }), `${state.me.name || state.me.agent_id} · ${t(available ? "agent.available" : "agent.away")}`);
}

function header(active) {
  const numberPicker = h("label", { class: "number-picker" },
    h("span", {}, t("nav.number")),
    h("select", { onchange: (e) => { state.number = e.target.value; route(); } },
      state.numbers.map((n) => h("option", { value: n, selected: n === state.number }, (state.numberLabels || {})[n] || n))));
  return h("header", { class: "topbar" },
    h("a", { class: "brand", href: "#/" }, h("img", { src: "/icon.svg", alt: "", width: 28, height: 28 }), h("span", {}, "Coexist")),
    h("nav", { class: "tabs", "aria-label": t("nav.main") },
      h("a", { href: "#/", "aria-current": active === "inbox" ? "page" : false }, t("nav.inbox")),
      h("a", { href: "#/numbers", "aria-current": active === "numbers" ? "page" : false }, t("nav.numbers")),
      h("a", { href: "#/dashboard", "aria-current": active === "dashboard" ? "page" : false }, t("nav.dashboard")),
      h("a", { href: "#/costs", "aria-current": active === "costs" ? "page" : false }, t("nav.costs")),
      mayReadAudit(state.session) ? h("a", { href: "#/audit", "aria-current": active === "audit" ? "page" : false }, t("nav.audit")) : null),
    h("div", { class: "topbar-tools" }, state.numbers.length ? numberPicker : null, availability(), languageSwitch(),
      h("button", { type: "button", class: "button ghost", onclick: () => signOut() }, t("nav.signout"))));
}

function route(event) {
  if (!state.session) return;
  const hash = decodeURIComponent(location.hash.replace(/^#/, ""));
  const active = hash.startsWith("/numbers") ? "numbers" : hash.startsWith("/dashboard") ? "dashboard"
    : hash.startsWith("/costs") ? "costs" : hash.startsWith("/audit") && mayReadAudit(state.session) ? "audit" : "inbox";
  const chatId = hash.startsWith("/chats/") ? hash.slice("/chats/".length) : null;
  if (event && event.type === "hashchange" && state.active === active && state.view?.open) {
    state.view.open(chatId); // the same screen: keep the list (and its scroll) as it is
    return;
  }
  state.active = active;
  state.view?.dispose();
  const main = h("main", { id: "main", class: `main main-${active}` });
  replace(root,
    h("a", { class: "skip-link", href: "#main", onclick: (e) => { e.preventDefault(); main.focus(); } }, t("nav.skip")),
    header(active), main,
    h("div", { class: "toasts" }, h("div", { id: "notices", role: "status" }), h("div", { id: "alerts", role: "alert" })));
  main.tabIndex = -1;
  const context = { state, api: state.api, notify, explain, rememberNumber, reroute: route, refreshMe: loadMe };
  const screens = { numbers: renderNumbers, dashboard: renderDashboard, costs: renderCosts, audit: renderAudit };
  state.view = screens[active] ? screens[active](main, context) : renderInbox(main, context, chatId);
}

let timer = null;
function schedulePolling() {
  clearInterval(timer);
  timer = setInterval(() => {
    if (document.visibilityState === "visible") state.view?.refresh();
  }, state.live ? SAFETY_REFRESH_MS : REFRESH_MS);
}

window.addEventListener("hashchange", route);
document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && state.view?.refresh());
schedulePolling();
start();
