import { Api, ApiError } from "../api.js";
import { localSession } from "../auth.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";

export function renderSignIn({ message, onSession, languageSwitch, signInWithCognito }) {
  const error = h("p", { id: "signin-error", class: "form-error", role: "alert" }, message || "");
  const intro = h("div", { class: "signin-intro" },
    h("div", { class: "signin-brand" }, h("img", { src: "/icon.svg", alt: "", width: 40, height: 40 }), h("span", {}, "Coexist")),
    h("h1", {}, t("signin.title")),
    h("p", { class: "muted" }, t("signin.intro")));
  if (signInWithCognito) {
    // Deployed: the organisation's Cognito sign-in (password and MFA) on its own page.
    const go = h("button", { type: "button", class: "button primary wide", onclick: () => { go.disabled = true; signInWithCognito(); } },
      t("signin.cognito"));
    queueMicrotask(() => go.focus());
    return h("main", { class: "signin" }, h("div", { class: "signin-card" }, intro, error,
      h("div", { class: "signin-form" }, go, h("p", { class: "help" }, t("signin.cognito_help"))),
      h("div", { class: "signin-footer" }, languageSwitch())));
  }

  const token = h("input", { id: "token", name: "token", type: "password", required: true, autocomplete: "off", "aria-describedby": "token-help" });
  const agent = h("input", { id: "agent", name: "agent", type: "text", autocomplete: "username", "aria-describedby": "agent-help" });
  const submit = h("button", { type: "submit", class: "button primary wide" }, t("signin.submit"));
  const form = h("form", {
    class: "signin-form", novalidate: true,
    onsubmit: async (event) => {
      event.preventDefault();
      if (!token.value.trim()) {
        error.textContent = t("signin.failed");
        token.focus();
        return;
      }
      const session = localSession(token.value, agent.value);
      submit.disabled = true;
      submit.textContent = t("signin.checking");
      try {
        // Any authenticated read proves the token; the agent list is small and always there.
        await new Api(session).agents();
        onSession(session);
      } catch (failure) {
        if (failure instanceof ApiError && failure.code === "forbidden") return onSession(session); // valid, just not an agent list reader
        error.textContent = failure instanceof ApiError && failure.code !== "unauthorized" ? failure.message : t("signin.failed");
        submit.disabled = false;
        submit.textContent = t("signin.submit");
        token.focus();
      }
    },
  },
  h("div", { class: "field" }, h("label", { for: "token" }, t("signin.token")), token, h("p", { id: "token-help", class: "help" }, t("signin.token_help"))),
  h("div", { class: "field" }, h("label", { for: "agent" }, t("signin.agent")), agent, h("p", { id: "agent-help", class: "help" }, t("signin.agent_help"))),
  submit);
  queueMicrotask(() => token.focus());
  return h("main", { class: "signin" }, h("div", { class: "signin-card" }, intro, error, form, h("div", { class: "signin-footer" }, languageSwitch())));
}
