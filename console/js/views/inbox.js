// The inbox: filters, search and the chat list (infinite scroll on the API's cursors) beside the
// open conversation.

import { h, replace } from "../dom.js";
import { initials, time } from "../format.js";
import { t } from "../i18n.js";
import { renderConversation } from "./conversation.js";

const FILTERS = ["all", "mine", "queued", "bot", "agent", "app", "closed"];
const filterState = { filter: "all", query: "" }; // kept while the person moves between screens

export function renderInbox(main, context, chatId) {
  const { state, api } = context;
  let chats = [];
  let next = null;
  let loading = false;
  let generation = 0; // a newer listing wins over a slower older one
  let conversation = null;
  let selected = chatId;

  const list = h("ul", { class: "chat-list", "aria-label": t("inbox.title") });
  const footer = h("p", { class: "list-footer muted", "aria-live": "polite" });
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const search = h("input", {
    type: "search", id: "search", placeholder: t("search.placeholder"), value: filterState.query, "aria-label": t("search.label"),
    oninput: debounce(() => { filterState.query = search.value.trim(); reload(); }, 300),
  });
  const filters = h("div", { class: "filters", role: "group", "aria-label": t("filter.label") },
    FILTERS.filter((f) => f !== "mine" || state.session.agentId).map((filter) =>
      h("button", {
        type: "button", class: "chip", "aria-pressed": String(filterState.filter === filter), dataset: { filter },
        onclick: (event) => {
          filterState.filter = filter;
          for (const chip of filters.querySelectorAll(".chip")) chip.setAttribute("aria-pressed", String(chip === event.currentTarget));
          reload();
        },
      }, t(`filter.${filter}`))));
  const detail = h("section", { class: "conversation-pane", "aria-label": t("chat.title") });
  const sidebar = h("section", { class: "inbox-pane", "aria-labelledby": "inbox-title" },
    h("div", { class: "inbox-head" },
      h("h1", { id: "inbox-title" }, t("inbox.title")),
      h("button", { type: "button", class: "button ghost small", onclick: () => reload() }, t("inbox.refresh"))),
    h("div", { class: "search" }, search), filters, h("div", { class: "chat-scroll" }, list, sentinel, footer));
  replace(main, sidebar, detail);

  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && next && !loading) loadMore();
  }, { root: sidebar.querySelector(".chat-scroll") });
  observer.observe(sentinel);

  function item(chat) {
    const name = chat.contact_name || `+${chat.wa_id}`;
    const unanswered = chat.last_customer_message_at && chat.last_customer_message_at === chat.last_message_at && chat.mode !== "closed";
    return h("li", {},
      h("a", {
        href: `#/chats/${encodeURIComponent(chat.chat_id)}`, class: "chat-item", dataset: { chatId: chat.chat_id },
        "aria-current": chat.chat_id === selected ? "true" : false,
      },
      h("span", { class: "avatar", "aria-hidden": "true" }, initials(name)),
      h("span", { class: "chat-item-body" },
        h("span", { class: "chat-item-top" }, h("span", { class: "chat-name" }, name), h("time", { datetime: chat.last_message_at }, time(chat.last_message_at))),
        h("span", { class: "chat-item-bottom" },
          h("span", { class: `mode mode-${chat.mode}` }, t(`chat.mode.${chat.mode}`)),
          chat.assignee && chat.mode !== "closed" ? h("span", { class: "muted small" }, t("chat.assignee", { name: chat.assignee })) : null,
          unanswered ? h("span", { class: "waiting-dot", title: t("inbox.awaiting") }, h("span", { class: "visually-hidden" }, t("inbox.awaiting"))) : null))));
  }

  let drawn = null;
  function draw() {
    // A refresh that changed nothing leaves the list alone (the scroll, the hover and the reader's
    // place in it); one that did redraws it, keeping the focused chat focused (see dom.replace).
    // The day is part of what is drawn: after midnight, yesterday's times show their date.
    const key = new Date().toDateString() + JSON.stringify(chats);
    if (key !== drawn) {
      drawn = key;
      replace(list, chats.map(item));
    }
    footer.textContent = chats.length === 0 && !loading ? t("inbox.empty") : next ? t("inbox.more") : chats.length > 8 ? t("inbox.end") : "";
  }

  async function fetchPage(cursor) {
    if (!state.number && filterState.filter !== "mine") return { items: [], next: null };
    return api.chats(state.number, { filter: filterState.filter, query: filterState.query, cursor, me: state.session.agentId });
  }

  async function reload() {
    const mine = ++generation;
    loading = true;
    try {
      const page = await fetchPage(null);
      if (mine !== generation) return;
      chats = page.items;
      next = page.next;
    } catch (error) {
      context.notify(context.explain(error), "error");
    } finally {
      if (mine === generation) loading = false;
    }
    draw();
  }

  async function loadMore() {
    const mine = generation;
    loading = true;
    try {
      const page = await fetchPage(next);
      if (mine !== generation) return;
      const known = new Set(chats.map((c) => c.chat_id));
      chats = chats.concat(page.items.filter((c) => !known.has(c.chat_id)));
      next = page.next;
    } catch (error) {
      context.notify(context.explain(error), "error");
    } finally {
      loading = false;
    }
    draw();
  }

  let refreshing = false;
  let again = false;
  async function refreshTop() {
    // Live: the first page again, merged over what is already listed (the rest keeps its place).
    if (loading || refreshing) {
      again = true; // read once more when this read is done: the change may have come after it
      return;
    }
    refreshing = true;
    const mine = generation;
    try {
      const page = await fetchPage(null);
      if (mine !== generation) return;
      const fresh = new Set(page.items.map((c) => c.chat_id));
      chats = page.items.concat(chats.slice(page.items.length).filter((c) => !fresh.has(c.chat_id)));
      if (!next && chats.length <= page.items.length) next = page.next;
      draw();
    } catch {
      // The next refresh tries again; errors from the person's own actions are shown where they act.
    } finally {
      refreshing = false;
    }
    if (again) {
      again = false;
      refreshTop();
    }
  }

  function open(id) {
    selected = id;
    for (const link of list.querySelectorAll(".chat-item")) {
      if (link.dataset.chatId === id) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
    conversation?.dispose();
    conversation = id ? renderConversation(detail, context, id, { onChange: refreshTop }) : null;
    if (!id) replace(detail, h("div", { class: "empty-state" }, h("p", {}, t("chat.none"))));
    main.classList.toggle("has-chat", Boolean(id));
  }

  reload();
  open(chatId);
  return {
    open,
    refresh() {
      refreshTop();
      conversation?.refresh();
    },
    dispose() {
      observer.disconnect();
      conversation?.dispose();
      generation++;
    },
  };
}

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
