// Words of the residents' pages (/report, /t/…), zh and en (?lang=en), kept apart from the
// staff pages' table in common.js: residents see plain words, never state or action ids.
import { LANG } from "./common.js";

const TEXT = {
  zh: {
    "report.title": "随手拍",
    "report.subtitle": "向街道反映街面问题",
    "report.type": "问题类型",
    "report.description": "描述",
    "report.where": "位置",
    "report.where.hint": "点击地图标出问题所在位置（仅限辖区内）",
    "report.where.locate": "使用我的位置",
    "report.where.denied": "无法获取定位，请在地图上点选位置",
    "report.where.none": "请在地图上点选问题所在位置",
    "report.lon": "经度",
    "report.lat": "纬度",
    "report.photo": "照片（可选）",
    "report.contact": "联系方式（可选）",
    "report.submit": "提交",
    "report.sending": "正在提交…",
    "report.done": "已受理，案件编号",
    "report.follow": "查看办理进度",
    "report.follow.hint": "请保存此链接：凭它查看进度并评价办理结果。",
    "error.outside_district": "该位置不在{district}辖区内，请在地图上选择辖区内的位置。",
    "error.invalid": "请检查填写的内容：",
    "error.field.description": "描述",
    "error.field.lon": "位置",
    "error.field.lat": "位置",
    "error.field.event_type": "问题类型",
    "error.field.photo": "照片",
    "error.field.contact": "联系方式",
    "error.photo": "照片无法接收（仅支持 JPEG/PNG，且不能过大）。",
    "error.too_many": "提交过于频繁，请稍后再试。",
    "error.not_found": "没有这个案件，请检查链接。",
    "error.network": "网络连接失败，请稍后再试。",
    "error.other": "提交失败，请稍后再试。",
    "error.rate_closed": "此案件当前不能评价（可能已评价过）。",
    "case.title": "案件进度",
    "case.subtitle": "",
    "case.number": "案件编号",
    "case.status": "当前状态",
    "case.opened": "受理时间",
    "case.closed": "办结时间",
    "case.progress": "办理过程",
    "case.note": "处理说明",
    "case.after_photo": "处理后照片",
    "case.rate": "满意度评价",
    "case.rate.hint": "问题已处理并核查，请为办理结果打分（1 最不满意，5 最满意）",
    "case.comment": "意见（可选）",
    "case.thanks": "感谢您的评价：",
    "case.waiting_rating": "问题处理并核查后，可在此页面评价。",
    "step.register": "已受理，等待派单",
    "step.return": "重新派单中",
    "step.dispatched": "已派给网格员",
    "step.accepted": "网格员已接单",
    "step.handling": "网格员已到场处理",
    "step.handled": "已处理，等待核查",
    "step.verified": "已核查，问题已解决",
    "step.evaluated": "已评价",
    "step.closed": "已办结",
    "step.void": "经核实不予处理，已撤销",
    "step.registered": "已受理",
  },
  en: {
    "report.title": "Report a problem",
    "report.subtitle": "Tell the sub-district about a street problem",
    "report.type": "Type of problem",
    "report.description": "Description",
    "report.where": "Location",
    "report.where.hint": "Tap the map where the problem is (inside the district)",
    "report.where.locate": "Use my location",
    "report.where.denied": "Your location is not available: tap the map instead",
    "report.where.none": "Tap the map where the problem is",
    "report.lon": "Longitude",
    "report.lat": "Latitude",
    "report.photo": "Photo (optional)",
    "report.contact": "Contact (optional)",
    "report.submit": "Submit",
    "report.sending": "Sending…",
    "report.done": "Received. Your case number is",
    "report.follow": "Follow your case",
    "report.follow.hint": "Keep this link: it shows the progress and lets you rate the result.",
    "error.outside_district": "This location is outside {district}. Pick a place inside the district on the map.",
    "error.invalid": "Please check:",
    "error.field.description": "description",
    "error.field.lon": "location",
    "error.field.lat": "location",
    "error.field.event_type": "type of problem",
    "error.field.photo": "photo",
    "error.field.contact": "contact",
    "error.photo": "The photo was not accepted (JPEG or PNG only, not too large).",
    "error.too_many": "Too many reports from here: please try again later.",
    "error.not_found": "There is no such case: please check the link.",
    "error.network": "No connection: please try again later.",
    "error.other": "Something went wrong: please try again later.",
    "error.rate_closed": "This case cannot be rated now (it may have been rated already).",
    "case.title": "Case progress",
    "case.subtitle": "",
    "case.number": "Case number",
    "case.status": "Status",
    "case.opened": "Received",
    "case.closed": "Completed",
    "case.progress": "Progress",
    "case.note": "What was done",
    "case.after_photo": "Photo after handling",
    "case.rate": "How satisfied are you?",
    "case.rate.hint": "The problem was handled and checked: rate the result (1 poor, 5 very good)",
    "case.comment": "Comment (optional)",
    "case.thanks": "Thank you for your rating:",
    "case.waiting_rating": "Once the problem is handled and checked you can rate it here.",
    "step.register": "Received, waiting to be assigned",
    "step.return": "Being assigned again",
    "step.dispatched": "Assigned to a grid worker",
    "step.accepted": "The grid worker took the case",
    "step.handling": "The grid worker is on site",
    "step.handled": "Handled, waiting to be checked",
    "step.verified": "Checked: the problem is solved",
    "step.evaluated": "Rated",
    "step.closed": "Completed",
    "step.void": "Not taken up after checking; withdrawn",
    "step.registered": "Received",
  },
};

/** A resident-facing word; {name} placeholders are filled from `vars`. */
export function rt(key, vars = {}) {
  const text = TEXT[LANG][key] ?? TEXT.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => vars[name] ?? "");
}

/** Static markup: every [data-rt] element gets its words in the page's language. */
export function applyResidentText(root = document) {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-rt]")) el.textContent = rt(el.dataset.rt);
  for (const el of root.querySelectorAll("[data-rt-placeholder]")) el.placeholder = rt(el.dataset.rtPlaceholder);
}

/**
 * A refused request in plain words: the API's reason code when it has one, else the fields a
 * validation error names (never the server's English message).
 */
export function errorText(status, body, vars = {}) {
  const detail = body?.detail;
  if (detail && typeof detail === "object" && !Array.isArray(detail) && detail.code) {
    const key = `error.${detail.code}`;
    if (rt(key) !== key) return rt(key, vars);
  }
  if (status === 413 || status === 415) return rt("error.photo");
  if (status === 429) return rt("error.too_many");
  if (status === 404) return rt("error.not_found");
  if (status === 422 && Array.isArray(detail)) {
    const fields = [...new Set(detail.map((d) => rt(`error.field.${d?.loc?.at(-1)}`)))];
    return `${rt("error.invalid")} ${fields.join(LANG === "zh" ? "、" : ", ")}`;
  }
  return rt("error.other");
}
