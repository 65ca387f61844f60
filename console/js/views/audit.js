// The audit trail (admins only): who did what to which chat, when and from where, newest first,
// filtered by user, chat, action and time, a page at a time on the API's cursor. Read-only: the trail
// cannot be changed, so nothing here offers to. It is read when asked (each read is itself recorded),
// never on the console's refresh timer.

import { h, replace } from "../dom.js";
import { locale, t } from "../i18n.js";

const PAGE = 25;

function when(iso) {
  // To the second: the order of entries is what an inquiry reads.
  return iso ? new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "medium" }).format(new Date(iso)) : "";
}

// Whether to offer the view: the shared local token is an admin; a Cognito user in the admin group.
// Only a hint for the menu: the API refuses the trail to anyone else whatever the console shows.
export function mayReadAudit(session) {
  if (!session) return false;
  if (session.kind !== "cognito") return session.sharedToken === true;
  try {
    const payload = session.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0))));
    const groups = claims["cognito:groups"] || [];
    return (Array.isArray(groups) ? groups : String(groups).split(/[\s,]+/)).includes("admin");
  } catch {
    return false;
  }
}

function field(id, label, attributes = {}) {
  return h("div", { class: "audit-field" },
    h("label", { for: id }, label),
    h("input", { id, name: id, autocomplete: "off", ...attributes }));
}

function isoOf(value, endOfDay) {
  if (!value) return null;
  return `${value}T${endOfDay ? "23:59:59.999" : "00:00:00"}Z`;
}

export function renderAudit(main, context) {
  const { api } = context;
  let cursors = [null]; // the cursor of each page shown so far: back is one pop away
  let filters = {};
  const status = h("p", { class: "muted small", role: "status" });
  const body = h("div", { class: "audit-body" });
  const newer = h("button", { type: "button", class: "button ghost", disabled: true, onclick: () => { cursors.pop(); load(); } }, t("audit.newer"));
  const older = h("button", { type: "button", class: "button ghost", disabled: true, onclick: () => { cursors.push(older.dataset.next); load(); } }, t("audit.older"));
  const form = h("form", {
    class: "audit-filters", "aria-label": t("audit.filters"),
    onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(form);
      filters = {
        user: data.get("audit-user").trim(), chat_id: data.get("audit-chat").trim(), action: data.get("audit-action").trim(),
        from: isoOf(data.get("audit-from"), false), to: isoOf(data.get("audit-to"), true),
      };
      cursors = [null];
      load();
    },
  },
  field("audit-user", t("audit.user")),
  field("audit-chat", t("audit.chat")),
  field("audit-action", t("audit.action"), { list: "audit-actions" }),
  h("datalist", { id: "audit-actions" }, ["read_chat", "read_messages", "send", "close", "transfer", "export", "erase",
    "set_legal_hold", "clear_legal_hold", "read_audit"].map((a) => h("option", { value: a }))),
  field("audit-from", t("audit.from"), { type: "date" }),
  field("audit-to", t("audit.to"), { type: "date" }),
  h("button", { type: "submit", class: "button" }, t("audit.apply")));

  replace(main, h("section", { class: "dashboard-page audit-page", "aria-labelledby": "audit-title" },
    h("div", { class: "dashboard-head" }, h("h1", { id: "audit-title" }, t("audit.title"))),
    h("p", { class: "muted small" }, t("audit.intro")),
    form, status, body,
    h("nav", { class: "audit-paging", "aria-label": t("audit.paging") }, newer, older)));

  let latest = 0;
  async function load() {
    const asked = ++latest; // an answer to an earlier request (other filters, another page) is dropped
    status.textContent = t("audit.loading");
    try {
      const page = await api.audit({ ...filters, limit: PAGE, cursor: cursors[cursors.length - 1] });
      if (asked !== latest) return;
      replace(body, page.items.length ? table(page.items) : h("p", { class: "muted" }, t("audit.none")));
      status.textContent = t("audit.page", { page: cursors.length, count: page.items.length });
      older.dataset.next = page.next || "";
      older.disabled = !page.next;
      newer.disabled = cursors.length <= 1;
    } catch (error) {
      if (asked !== latest) return;
      status.textContent = "";
      older.disabled = newer.disabled = true;
      if (error.status === 403) return replace(body, h("p", { class: "muted" }, t("audit.forbidden")));
      if (error.status === 400) return replace(body, h("p", { class: "muted" }, error.message));
      context.notify(context.explain(error), "error");
    }
  }

  load();
  return { refresh() {}, dispose() {} }; // read when asked: every read of the trail is itself recorded
}

function table(items) {
  return h("table", { class: "audit-table" },
    h("caption", { class: "visually-hidden" }, t("audit.caption")),
    h("thead", {}, h("tr", {}, ["when", "who", "what", "chat", "where"].map((c) => h("th", { scope: "col" }, t(`audit.col.${c}`))))),
    h("tbody", {}, items.map((e) => h("tr", { dataset: { entry: e.entry_id, actor: e.actor, action: e.action } },
      h("td", {}, h("time", { datetime: e.at }, when(e.at))),
      h("td", {}, e.actor, e.role ? h("span", { class: "muted small" }, ` · ${e.role}`) : null),
      h("td", {}, h("code", {}, e.action), " ",
        h("span", { class: `audit-outcome audit-${e.outcome}` }, t(`audit.outcome.${e.outcome}`)),
        e.reason ? h("div", { class: "muted small" }, e.reason) : null,
        e.request ? h("div", { class: "muted small" }, h("code", {}, e.request)) : null),
      h("td", {}, e.chat_id ? h("code", {}, e.chat_id) : h("span", { class: "muted" }, "—")),
      h("td", {}, e.source_ip || "—", e.user_agent ? h("div", { class: "muted small audit-agent", title: e.user_agent }, e.user_agent) : null)))));
}
