import { locale, t } from "./i18n.js";

export function time(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return new Intl.DateTimeFormat(locale(), sameDay ? { hour: "2-digit", minute: "2-digit" } : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }).format(date);
}

export function fullTime(iso) {
  return iso ? new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso)) : "";
}

export function countdown(untilIso, now = Date.now()) {
  const left = Math.max(0, Math.floor((new Date(untilIso).getTime() - now) / 1000));
  const hours = Math.floor(left / 3600);
  const minutes = Math.floor((left % 3600) / 60);
  const seconds = left % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return `${hours}:${pad(minutes)}:${pad(seconds)}`;
}

export function daysSince(iso, now = Date.now()) {
  return iso ? Math.floor((now - new Date(iso).getTime()) / 86_400_000) : null;
}

export function initials(name) {
  const words = (name || "?").trim().split(/\s+/).filter(Boolean);
  return (words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || "?").slice(0, 2)).toUpperCase();
}

export function failureInWords(message) {
  const reason = message.failure_reason || "";
  const key = reason.split(":")[0];
  if (["window_closed", "retries_exhausted", "opted_out"].includes(key)) return t(`failure.${key}`);
  const meta = (message.errors || []).find((e) => e.message || e.title || e.error_data);
  if (meta) return [meta.title, meta.message, meta.error_data && meta.error_data.details].filter(Boolean).join(": ") || t("failure.unknown");
  return reason || t("failure.unknown");
}
