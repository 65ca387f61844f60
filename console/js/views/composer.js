// Replying: inside the customer-service window a free-form message (text, quick-reply buttons or
// media by link; Enter sends); outside it only an approved template, with its parameters filled in.

import { h, replace } from "../dom.js";
import { t } from "../i18n.js";

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

export function renderComposer(slot, context, chat, { onSent }) {
  if (chat.window_open) return freeForm(slot, context, chat, onSent);
  return templatePicker(slot, context, chat, onSent);
}

function freeForm(slot, context, chat, onSent) {
  let kind = "text";
  const text = h("textarea", { id: "composer-text", rows: 2, placeholder: t("composer.placeholder"), "aria-label": t("composer.label"), maxlength: 4096 });
  const buttons = h("textarea", { id: "composer-buttons", rows: 3 });
  const mediaType = h("select", { id: "composer-media-type" }, ["image", "document", "video", "audio"].map((m) => h("option", { value: m }, m)));
  const link = h("input", { id: "composer-link", type: "url", placeholder: "https://", inputmode: "url" });
  const extras = {
    buttons: h("div", { class: "field compact" }, h("label", { for: "composer-buttons" }, t("composer.buttons")), buttons),
    media: h("div", { class: "inline-fields" },
      h("div", { class: "field compact" }, h("label", { for: "composer-media-type" }, t("composer.media_type")), mediaType),
      h("div", { class: "field compact grow" }, h("label", { for: "composer-link" }, t("composer.media_link")), link)),
  };
  const extra = h("div", { class: "composer-extra" });
  const kinds = h("div", { class: "composer-kinds", role: "group", "aria-label": t("composer.kind") },
    [["text", t("composer.text")], ["buttons", t("composer.buttons").split(" (")[0]], ["media", t("composer.media")]].map(([value, label]) =>
      h("button", {
        type: "button", class: "chip", "aria-pressed": String(value === kind), dataset: { kind: value },
        onclick: (event) => {
          kind = value;
          for (const chip of kinds.querySelectorAll(".chip")) chip.setAttribute("aria-pressed", String(chip === event.currentTarget));
          replace(extra, extras[kind] || null);
          text.placeholder = kind === "media" ? t("composer.caption") : t("composer.placeholder");
        },
      }, label)));
  const send = h("button", { type: "submit", class: "button primary" }, t("composer.send"));
  const form = h("form", {
    class: "composer", "aria-label": t("composer.reply"),
    onsubmit: async (event) => {
      event.preventDefault();
      const payload = build();
      if (!payload) return;
      send.disabled = true;
      try {
        await context.api.send(chat.chat_id, payload);
        text.value = buttons.value = link.value = "";
        onSent();
      } catch (error) {
        context.notify(context.explain(error), "error");
      } finally {
        send.disabled = false;
        text.focus();
      }
    },
  }, kinds, extra, h("div", { class: "composer-row" }, text, send));

  function build() {
    const body = text.value.trim();
    if (kind === "media") return link.value.trim() ? { type: mediaType.value, link: link.value.trim(), ...(body && mediaType.value !== "audio" ? { caption: body } : {}) } : null;
    if (!body) return null;
    if (kind === "buttons") {
      const titles = buttons.value.split("\n").map((b) => b.trim()).filter(Boolean).slice(0, 3);
      if (titles.length) return { type: "interactive", body, buttons: titles.map((title, i) => ({ id: `reply_${i + 1}`, title })) };
    }
    return { type: "text", text: body };
  }

  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  replace(slot, form);
  return { dispose() {} };
}

function templatePicker(slot, context, chat, onSent) {
  let disposed = false;
  const form = h("form", { class: "composer template-picker", "aria-labelledby": "template-title" },
    h("h3", { id: "template-title" }, t("template.title")), h("p", { class: "muted small" }, t("chat.window_closed")));
  replace(slot, form);
  context.api.templates(chat.phone_number_id).then((answer) => {
    if (disposed) return;
    const approved = answer.items.filter((tpl) => tpl.status === "APPROVED");
    if (!approved.length) return form.append(h("p", { class: "muted" }, t("template.none")));
    const select = h("select", { id: "template-name" }, approved.map((tpl, i) => h("option", { value: String(i) }, `${tpl.name} · ${tpl.language} · ${tpl.category}`)));
    const params = h("div", { class: "template-params" });
    const preview = h("p", { class: "template-preview", id: "template-preview", "aria-live": "polite" });
    const send = h("button", { type: "submit", class: "button primary" }, t("template.send"));
    let inputs = [];

    const bodyText = (tpl) => (tpl.components || []).find((c) => String(c.type).toUpperCase() === "BODY")?.text || "";
    const names = (tpl) => [...new Set([...bodyText(tpl).matchAll(PLACEHOLDER)].map((m) => m[1]))];

    function choose() {
      const tpl = approved[Number(select.value)];
      const wanted = names(tpl);
      const count = Math.max(tpl.body_parameters || 0, wanted.length);
      inputs = Array.from({ length: count }, (_, i) => h("input", { id: `template-param-${i + 1}`, type: "text", required: true, oninput: show }));
      replace(params, inputs.map((input, i) =>
        h("div", { class: "field compact" }, h("label", { for: input.id }, t("template.param", { n: wanted[i] || i + 1 })), input)));
      show();
    }

    function show() {
      const tpl = approved[Number(select.value)];
      const wanted = names(tpl);
      preview.textContent = bodyText(tpl).replace(PLACEHOLDER, (whole, name) => {
        const value = inputs[wanted.indexOf(name)]?.value;
        return value ? value : whole;
      });
    }

    select.addEventListener("change", choose);
    form.append(
      h("div", { class: "field compact" }, h("label", { for: "template-name" }, t("template.pick")), select),
      params,
      h("div", { class: "field compact" }, h("span", { class: "label" }, t("template.preview")), preview),
      h("div", { class: "composer-row end" }, send));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const tpl = approved[Number(select.value)];
      const components = inputs.length ? [{ type: "body", parameters: inputs.map((i) => ({ type: "text", text: i.value })) }] : [];
      send.disabled = true;
      try {
        await context.api.send(chat.chat_id, { type: "template", template: { name: tpl.name, language: tpl.language, components } });
        for (const input of inputs) input.value = "";
        show();
        onSent();
      } catch (error) {
        context.notify(context.explain(error), "error");
      } finally {
        send.disabled = false;
      }
    });
    choose();
  }).catch((error) => !disposed && form.append(h("p", { class: "form-error", role: "alert" }, context.explain(error))));
  return { dispose() { disposed = true; } };
}
