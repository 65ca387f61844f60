// One conversation: who and where it stands (mode, assignee, window), every message with its
// source and delivery, the handoff actions, and the composer (free-form inside the customer-service
// window, approved templates outside it).

import { h, replace } from "../dom.js";
import { countdown, failureInWords, fullTime, time } from "../format.js";
import { t } from "../i18n.js";
import { renderComposer } from "./composer.js";

const MAX_PAGES = 20;
const TICKS = { queued: "◷", accepted: "✓", sent: "✓", delivered: "✓✓", read: "✓✓", played: "▶", failed: "!" };

export function renderConversation(pane, context, chatId, { onChange }) {
  const { api, state } = context;
  let chat = null;
  let messages = [];
  let pageStarts = [null]; // cursor of each loaded page; live refresh re-reads from the last one
  let drawnMessages = "";
  let drawnChat = "";
  let disposed = false;
  let composer = null;
  let composerWindow = null;

  const head = h("header", { class: "conversation-head" });
  const banners = h("div", { class: "banners" });
  const log = h("ol", { class: "messages", "aria-label": t("chat.title"), tabindex: "0" });
  const composerSlot = h("div", { class: "composer-slot" });
  const countdownText = h("span", { class: "window-countdown", role: "timer" });
  replace(pane, head, banners, log, composerSlot);

  const pageSizes = [];
  async function loadMessages(fromPage) {
    let cursor = pageStarts[fromPage];
    let collected = messages.slice(0, pageSizes.slice(0, fromPage).reduce((a, b) => a + b, 0));
    const starts = pageStarts.slice(0, fromPage + 1);
    for (let page = fromPage; page < MAX_PAGES; page++) {
      const answer = await api.messages(chatId, cursor);
      pageSizes[page] = answer.items.length;
      collected = collected.concat(answer.items);
      if (!answer.next) break;
      cursor = answer.next;
      starts.push(cursor);
    }
    pageStarts = starts;
    messages = collected;
  }

  let inFlight = null;
  let again = false;
  async function load(first) {
    // One read at a time; a change announced meanwhile is read right after (never in parallel).
    if (inFlight) {
      again = true;
      return inFlight;
    }
    inFlight = read(first);
    try {
      await inFlight;
    } finally {
      inFlight = null;
    }
    if (again && !disposed) {
      again = false;
      load(false);
    }
  }

  async function read(first) {
    try {
      const [view] = await Promise.all([api.chat(chatId), loadMessages(first ? 0 : pageStarts.length - 1)]);
      if (disposed) return;
      chat = view;
      draw();
    } catch (error) {
      if (disposed) return;
      if (first) replace(pane, h("div", { class: "empty-state" }, h("p", { role: "alert" }, context.explain(error))));
    }
  }

  function draw() {
    const chatKey = JSON.stringify(chat) + (state.me?.status || "");
    if (chatKey !== drawnChat) {
      drawnChat = chatKey;
      drawHead();
      drawBanners();
    }
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80 || !drawnMessages;
    tick();
    if (composerWindow !== chat.window_open) {
      composerWindow = chat.window_open;
      composer?.dispose();
      composer = renderComposer(composerSlot, context, chat, { onSent: () => { load(false); onChange(); } });
    }
    const messageKey = JSON.stringify(messages);
    if (messageKey !== drawnMessages) {
      drawnMessages = messageKey;
      replace(log, messages.map((m) => messageItem(m, chat)));
    }
    if (atBottom) log.scrollTop = log.scrollHeight; // follow the conversation unless the agent scrolled up
  }

  function drawHead() {
    const name = chat.contact_name || `+${chat.wa_id}`;
    const me = state.session.agentId;
    const actions = [];
    const act = (action, label, body) => h("button", {
      type: "button", class: `button ${action === "accept" ? "primary" : action === "close" ? "danger" : "secondary"}`, dataset: { action },
      onclick: () => perform(action, label, body),
    }, label);
    // Only what the workflow lets this person do now (the API refuses the rest, and says why).
    const mine = Boolean(me) && chat.assignee === me;
    const offeredToMe = Boolean(me) && chat.offered_to === me;
    if (offeredToMe || (chat.mode === "queued" && !chat.assignee)) actions.push(act("accept", t("action.accept")));
    if (mine || offeredToMe) actions.push(act("release", t("action.release")));
    if (mine && chat.waiting_for === "agent") actions.push(h("button", { type: "button", class: "button secondary", dataset: { action: "transfer" }, onclick: openTransfer }, t("action.transfer")));
    if (mine || (chat.mode !== "closed" && chat.conversation_state !== "live")) actions.push(act("close", t("action.close")));
    replace(head,
      h("div", { class: "who" },
        h("h2", { id: "conversation-title" }, name),
        h("p", { class: "muted small" }, `+${chat.wa_id}`,
          h("span", { class: `mode mode-${chat.mode}` }, t(`chat.mode.${chat.mode}`)),
          chat.assignee && chat.mode !== "closed" ? h("span", {}, t("chat.assignee", { name: chat.assignee })) : null,
          chat.offered_to && !chat.assignee ? h("span", {}, t("chat.offered", { name: chat.offered_to })) : null)),
      h("div", { class: "window" }, countdownText),
      h("div", { class: "actions" }, actions));
  }

  function drawBanners() {
    const items = [];
    if (chat.mode === "app" || chat.takeover_by === "app") {
      items.push(h("div", { class: "banner banner-warning", role: "note", dataset: { banner: "takeover" } },
        t("chat.takeover", { when: chat.takeover_at || chat.last_app_activity_at ? ` (${time(chat.takeover_at || chat.last_app_activity_at)})` : "" })));
    }
    if (chat.window_closing && chat.window_open) {
      const offer = chat.window_closing.template;
      items.push(h("div", { class: "banner banner-warning", role: "note", dataset: { banner: "window-closing" } },
        t("chat.window_closing", { time: time(chat.window_closing.closes_at) }),
        offer ? ` ${t("chat.window_closing_template", { name: offer.name })}` : ""));
    }
    if (chat.reminder_context && chat.mode !== "closed") {
      const reminder = chat.reminder_context;
      items.push(h("div", { class: "banner banner-info", role: "note", dataset: { banner: "reschedule" } },
        t("chat.reschedule", { template: reminder.template, time: time(reminder.send_at) })));
    }
    if (chat.satisfaction_score) {
      items.push(h("div", { class: "banner banner-info", role: "note", dataset: { banner: "csat" } }, t("chat.csat", { score: chat.satisfaction_score })));
    }
    replace(banners, items);
  }

  function tick() {
    if (!chat) return;
    const open = chat.window_open && chat.window_expires_at && new Date(chat.window_expires_at) > Date.now();
    countdownText.className = `window-countdown ${open ? "is-open" : "is-closed"}`;
    countdownText.textContent = open
      ? t("chat.window_open", { time: countdown(chat.window_expires_at) })
      : t(chat.window_expires_at ? "chat.window_closed" : "chat.window_never");
    if (!open && chat.window_open) { chat.window_open = false; draw(); }
  }

  async function perform(action, label, body = {}) {
    try {
      chat = await api.act(chatId, action, body);
      context.notify(t("action.done", { what: label }));
      draw();
      onChange();
    } catch (error) {
      context.notify(context.explain(error), "error");
    }
  }

  async function openTransfer() {
    let agents = [];
    try {
      agents = (await api.agents()).items;
    } catch {
      agents = [];
    }
    const agent = h("select", { id: "transfer-agent" }, h("option", { value: "" }, t("transfer.none")),
      agents.filter((a) => a.agent_id !== state.session.agentId).map((a) => h("option", { value: a.agent_id }, `${a.name || a.agent_id} (${t(`agent.${a.status === "available" ? "available" : "away"}`)})`)));
    const skills = [...new Set(agents.flatMap((a) => a.skills || []))];
    const skill = h("select", { id: "transfer-skill" }, h("option", { value: "" }, t("transfer.none")), skills.map((s) => h("option", { value: s }, s)));
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": "transfer-title" },
      h("form", {
        method: "dialog",
        onsubmit: (event) => {
          event.preventDefault();
          const body = {};
          if (agent.value) body.agent_id = agent.value;
          if (skill.value) body.skill = skill.value;
          dialog.close();
          dialog.remove();
          if (body.agent_id || body.skill) perform("transfer", t("action.transfer"), body);
        },
      },
      h("h2", { id: "transfer-title" }, t("transfer.title")),
      h("div", { class: "field" }, h("label", { for: "transfer-agent" }, t("transfer.agent")), agent),
      h("div", { class: "field" }, h("label", { for: "transfer-skill" }, t("transfer.skill")), skill),
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", class: "button ghost", onclick: () => { dialog.close(); dialog.remove(); } }, t("action.cancel")),
        h("button", { type: "submit", class: "button primary" }, t("transfer.submit")))));
    document.body.append(dialog);
    dialog.showModal();
    agent.focus();
  }

  const clock = setInterval(tick, 1000);
  load(true);
  return {
    refresh() { if (!disposed) load(false); },
    dispose() { disposed = true; clearInterval(clock); composer?.dispose(); },
  };
}

function messageItem(message, chat) {
  const outbound = message.direction === "outbound";
  const source = message.history ? "history" : message.source || "other";
  const sender = outbound ? message.sent_by || null : chat.contact_name || `+${chat.wa_id}`;
  return h("li", { class: `message ${outbound ? "outbound" : "inbound"} source-${message.source || "other"}`, dataset: { id: message.id, status: message.status || "" } },
    h("div", { class: "message-meta" },
      h("span", { class: `badge badge-${source}` }, t(`source.${source}`) === `source.${source}` ? source : t(`source.${source}`)),
      sender ? h("span", { class: "sender" }, sender) : null,
      message.history ? h("span", { class: "tag" }, t("message.imported")) : null),
    h("div", { class: "bubble" }, body(message)),
    h("div", { class: "message-foot" },
      h("time", { datetime: message.timestamp, title: fullTime(message.timestamp) }, time(message.timestamp)),
      message.edited_at ? h("span", { class: "tag" }, t("message.edited")) : null,
      outbound && message.status ? status(message) : null),
    message.status === "failed" ? h("p", { class: "failure", role: "note" }, `${t("status.failed")}: ${failureInWords(message)}`) : null);
}

function status(message) {
  const label = t(`status.${message.status}`);
  return h("span", { class: `ticks ticks-${message.status}`, title: label },
    h("span", { "aria-hidden": "true" }, TICKS[message.status] || ""), h("span", { class: "tick-label" }, label));
}

function body(message) {
  if (message.revoked_at) return h("em", { class: "muted" }, t("message.revoked"));
  const content = message.content || {};
  const media = content.link || content.id ? content : content[message.type] || {};
  switch (message.type) {
    case "image":
      return media.link
        ? h("figure", {}, h("img", { src: media.link, alt: message.text || t("message.media", { type: "image" }), loading: "lazy" }), message.text ? h("figcaption", {}, message.text) : null)
        : h("p", { class: "muted" }, t("message.media", { type: "image" }), message.text ? ` · ${message.text}` : "");
    case "document":
      return media.link
        ? h("a", { href: media.link, target: "_blank", rel: "noopener noreferrer", class: "document", dataset: { document: message.id } }, // kept focused across redraws
          `📄 ${media.filename || message.text || t("message.document")}`)
        : h("p", { class: "muted" }, `📄 ${media.filename || t("message.document")}`);
    case "audio":
    case "video":
    case "sticker":
      return h("p", { class: "muted" }, t("message.media", { type: message.type }), message.text ? ` · ${message.text}` : "");
    case "template":
      return h("p", {}, h("span", { class: "tag" }, "template"), ` ${content.name || ""}`);
    case "interactive": {
      const buttons = content.action?.buttons || [];
      return h("div", {}, h("p", {}, message.text || ""), buttons.length
        ? h("ul", { class: "quick-replies" }, buttons.map((b) => h("li", {}, b.reply?.title || b.title || "")))
        : null);
    }
    default:
      return message.text != null ? h("p", {}, message.text) : h("p", { class: "muted" }, t("message.unsupported", { type: message.type || "?" }));
  }
}
