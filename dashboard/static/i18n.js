// The one translation mechanism of every page: the page's language (?lang=en, else Chinese) and
// `t(key, vars)`, which looks a key up in the words the page's modules registered. The words are
// data modules (staff-words.js, phone-words.js, resident-words.js, engineer-words.js,
// verdict-words.js), each calling `addWords` once; a page imports the ones it shows. Names of
// the center's ids (event types, states, ...) are not words: they come from the center
// (vocabulary.js).

export const LANG = new URLSearchParams(location.search).get("lang") === "en" ? "en" : "zh";

const WORDS = { zh: new Map(), en: new Map() };

/**
 * Register a table of words, {zh: {key: text}, en: {key: text}}. A key belongs to one table:
 * registering it again with another text is a mistake in the tables (two pages' modules would
 * show different words depending on import order), so it throws.
 */
export function addWords(table) {
  for (const lang of ["zh", "en"]) {
    for (const [key, text] of Object.entries(table[lang] ?? {})) {
      const had = WORDS[lang].get(key);
      if (had !== undefined && had !== text) throw new Error(`i18n: ${key} registered twice (${lang})`);
      WORDS[lang].set(key, text);
    }
  }
}

/** The word for `key` in the page's language (else Chinese, else the key), {name}s filled from `vars`. */
export function t(key, vars) {
  const text = WORDS[LANG].get(key) ?? WORDS.zh.get(key) ?? key;
  return vars ? text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? "")) : text;
}

/** Whether `key` has words (to fall back to something else when it has none). */
export const hasWords = (key) => WORDS.zh.has(key) || WORDS.en.has(key);

/** ", " or "、" between the items of a list, and ": " or "：" after a heading, in the page's language. */
export const LIST_SEP = LANG === "zh" ? "、" : ", ";
export const COLON = LANG === "zh" ? "：" : ": ";

/** Translate static markup: [data-i18n] elements get their text, [data-i18n-placeholder] their placeholder. */
export function applyI18n(root = document) {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

/** The current URL with ?lang toggled, for a language switch link. */
export function otherLangHref() {
  const url = new URL(location.href);
  if (LANG === "en") url.searchParams.delete("lang");
  else url.searchParams.set("lang", "en");
  return url.pathname + url.search;
}
