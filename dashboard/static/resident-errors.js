// A refused request on the residents' pages in plain words (never the server's English).
import { hasWords, LIST_SEP, t } from "./i18n.js";
import "./resident-words.js";

/**
 * A refused request in plain words: the API's reason code when it has one, else the fields a
 * validation error names (never the server's English message).
 */
export function residentErrorText(status, body, vars = {}) {
  const detail = body?.detail;
  if (detail && typeof detail === "object" && !Array.isArray(detail) && detail.code) {
    const key = `error.${detail.code}`;
    if (hasWords(key)) return t(key, vars);
  }
  if (status === 413 || status === 415) return t("error.photo");
  if (status === 429) return t("error.too_many");
  if (status === 404) return t("error.not_found");
  if (status === 422 && Array.isArray(detail)) {
    const fields = [...new Set(detail.map((d) => t(`error.field.${d?.loc?.at(-1)}`)))];
    return `${t("error.invalid")} ${fields.join(LIST_SEP)}`;
  }
  return t("error.other");
}
