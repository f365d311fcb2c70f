// Times, ages and rates as the pages show them, in the page's language.
import { LANG } from "./i18n.js";

export function parseTime(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

const locale = () => (LANG === "zh" ? "zh-CN" : "en-GB");

export function fmtTime(value) {
  const d = parseTime(value);
  return d ? d.toLocaleTimeString(locale(), { hour12: false }) : "";
}

export function fmtDateTime(value) {
  const d = parseTime(value);
  if (!d) return "";
  const sameDay = isToday(d);
  const opts = sameDay
    ? { hour: "2-digit", minute: "2-digit", hour12: false }
    : { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false };
  return d.toLocaleString(locale(), opts);
}

export function isToday(value, now = new Date()) {
  const d = value instanceof Date ? value : parseTime(value);
  return !!d && d.toDateString() === now.toDateString();
}

/** Elapsed time since `value`, compact: 45秒 / 12分 / 3时05分 / 2天3时 (en: 45s / 12m / 3h05m / 2d3h). */
export function fmtAge(value, now = Date.now()) {
  const d = parseTime(value);
  if (!d) return "";
  const s = Math.max(0, Math.floor((now - d.getTime()) / 1000));
  const zh = LANG === "zh";
  if (s < 60) return zh ? `${s}秒` : `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return zh ? `${m}分` : `${m}m`;
  const hrs = Math.floor(m / 60);
  const mm = String(m % 60).padStart(2, "0");
  if (hrs < 24) return zh ? `${hrs}时${mm}分` : `${hrs}h${mm}m`;
  const days = Math.floor(hrs / 24);
  return zh ? `${days}天${hrs % 24}时` : `${days}d${hrs % 24}h`;
}

export function ageSeconds(value, now = Date.now()) {
  const d = parseTime(value);
  return d ? Math.max(0, (now - d.getTime()) / 1000) : 0;
}

/** 0.9372 -> "93.7%"; null (nothing due) -> "—". */
export function fmtRate(value, digits = 1) {
  return value === null || value === undefined || !Number.isFinite(Number(value))
    ? "—"
    : `${(Number(value) * 100).toFixed(digits)}%`;
}
