// The business's numbers: coexistence state, the history import, and how long since the phone
// app was last used (WhatsApp disconnects a number after about 14 days without it).

import { h, replace } from "../dom.js";
import { daysSince, fullTime } from "../format.js";
import { t } from "../i18n.js";

const APP_WARNING_DAYS = 10;

export function renderNumbers(main, context) {
  const { state, api } = context;
  const cards = h("div", { class: "number-cards" });
  const input = h("input", { id: "number-id", type: "text", inputmode: "numeric", pattern: "[0-9]+", required: true });
  const form = h("form", {
    class: "inline-form",
    onsubmit: async (event) => {
      event.preventDefault();
      const id = input.value.trim();
      if (!id) return;
      try {
        await api.number(id);
        context.rememberNumber(id);
        input.value = "";
        draw();
      } catch (error) {
        context.notify(context.explain(error), "error");
      }
    },
  }, h("label", { for: "number-id" }, t("numbers.add")), input, h("button", { type: "submit", class: "button secondary" }, t("numbers.add_submit")));
  replace(main, h("section", { class: "numbers-page", "aria-labelledby": "numbers-title" }, h("h1", { id: "numbers-title" }, t("numbers.title")), cards, form));

  async function draw() {
    const views = await Promise.all(state.numbers.map((id) => api.number(id).catch((error) => ({ phone_number_id: id, error }))));
    replace(cards, views.map(card));
  }

  function card(number) {
    if (number.error) {
      return h("article", { class: "card" }, h("h2", {}, number.phone_number_id), h("p", { class: "form-error" }, context.explain(number.error)));
    }
    const stateName = number.coexistence_state || "unknown";
    const sync = number.history_sync || {};
    const days = daysSince(number.last_app_activity_at);
    return h("article", { class: "card", dataset: { number: number.phone_number_id } },
      h("header", { class: "card-head" },
        h("h2", {}, number.display_phone_number ? `+${number.display_phone_number}` : number.phone_number_id),
        h("span", { class: `state state-${stateName}` }, t(`numbers.state.${stateName}`))),
      h("p", { class: "muted small" }, `ID ${number.phone_number_id}${number.waba_id ? ` · WABA ${number.waba_id}` : ""}`),
      number.coexistence_reason ? h("p", { class: "small" }, `${number.coexistence_event || ""} ${number.coexistence_reason}`.trim(), number.coexistence_changed_at ? ` · ${fullTime(number.coexistence_changed_at)}` : "") : null,
      h("dl", { class: "facts" },
        h("div", {}, h("dt", {}, t("numbers.history")), h("dd", {},
          sync.declined ? t("numbers.history_declined")
            : h("div", { class: "progress" },
              h("progress", { max: 100, value: sync.progress || 0, "aria-label": t("numbers.history") }),
              h("span", {}, sync.phase == null && !sync.progress ? t("numbers.history_none") : `${sync.progress || 0}%`)))),
        h("div", {}, h("dt", {}, t("numbers.app_days")), h("dd", { class: days !== null && days >= APP_WARNING_DAYS ? "warning" : "" },
          days === null ? t("numbers.app_never") : days === 0 ? t("numbers.app_today") : t("numbers.app_days_ago", { days }),
          days !== null && days >= APP_WARNING_DAYS ? h("span", { class: "help" }, ` ${t("numbers.app_warning")}`) : null))),
      h("div", { class: "card-actions" },
        h("button", {
          type: "button", class: "button secondary small", id: `sync-templates-${number.phone_number_id}`, // kept focused across redraws
          onclick: async () => {
            try {
              const answer = await api.syncTemplates(number.phone_number_id);
              context.notify(t("numbers.synced", { count: answer.synced }));
            } catch (error) {
              context.notify(context.explain(error), "error");
            }
          },
        }, t("numbers.sync_templates"))));
  }

  draw();
  return { refresh: draw, dispose() {} };
}
