// The phone's own words (beyond common.js's table) and its deadline countdown.
import { LANG, h, parseTime, t } from "./common.js";

const WORDS = {
  zh: {
    "action.arrive": "已到场",
    "action.dispatch": "派遣",
    "action.verify": "核查通过",
    "action.rework": "返工",
    "action.escalate": "升级",
    "action.reassign": "改派",
    "action.acknowledge": "确认",
    "action.approve_extension": "批准延期",
    "action.void": "作废",
    "action.close": "结案",
    "action.rate": "评价",
    "detail.back": "‹ 返回",
    "detail.open": "详情",
    "detail.camera": "摄像头",
    "detail.due": "本环节时限",
    "detail.description": "描述",
    "detail.no_place": "无位置信息",
    "detail.nav": "导航",
    "detail.amap": "高德地图",
    "detail.baidu": "百度地图",
    "detail.photo": "拍照（处置后现场）",
    "detail.resolve": "提交处置",
    "detail.resolve_note": "处置说明（可选）",
    "detail.reason_needed": "请填写退回原因",
    "detail.minutes": "分钟",
    "detail.ledger": "处理记录",
    "detail.ledger_offline": "离线：处理记录暂不可见",
    "pending.badge": "条待发送",
    "pending.waiting": "待发送",
    "pending.failed": "未能提交",
    "pending.sent": "已提交",
    "offline.saved": "离线：操作已保存，联网后自动提交",
    "due.overdue": "已超时",
    "due.left": "剩余",
    "notify.enable": "开启提醒",
    "gone.reassigned": "工单 #{id}（{name}）已改派给 {to}，您无需再处理",
    "gone.nobody": "工单 #{id}（{name}）已不再由您处理",
    "sent_back.rework": "返工",
    "sent_back.rework_n": "返工（第 {n} 次）",
    "sent_back.return": "曾被退回",
    "sent_back.camera": "摄像头再次发现违规",
    "sent_back.by": "由 {who}",
    "announce.rework": "返工",
    "broadcast.title": "紧急通知",
    "broadcast.from": "发布人",
    "detail.photos": "现场照片",
    "detail.reporter": "联系方式",
    "detail.source": "来源",
  },
  en: {
    "action.arrive": "Arrived",
    "action.dispatch": "Dispatch",
    "action.verify": "Verify",
    "action.rework": "Rework",
    "action.escalate": "Escalate",
    "action.reassign": "Reassign",
    "action.acknowledge": "Acknowledge",
    "action.approve_extension": "Approve extension",
    "action.void": "Void",
    "action.close": "Close",
    "action.rate": "Rate",
    "detail.back": "‹ Back",
    "detail.open": "Details",
    "detail.camera": "Camera",
    "detail.due": "Stage deadline",
    "detail.description": "Description",
    "detail.no_place": "No location",
    "detail.nav": "Navigate",
    "detail.amap": "Amap",
    "detail.baidu": "Baidu Maps",
    "detail.photo": "Photo of the place, handled",
    "detail.resolve": "Submit as handled",
    "detail.resolve_note": "Note (optional)",
    "detail.reason_needed": "Give a reason to return it",
    "detail.minutes": "minutes",
    "detail.ledger": "Ledger",
    "detail.ledger_offline": "Offline: ledger not available",
    "pending.badge": "pending",
    "pending.waiting": "Waiting to send",
    "pending.failed": "Not accepted",
    "pending.sent": "Sent",
    "offline.saved": "Offline: saved, it is sent when the connection is back",
    "due.overdue": "overdue",
    "due.left": "left",
    "notify.enable": "Enable alerts",
    "gone.reassigned": "Case #{id} ({name}) was reassigned to {to}; you no longer handle it",
    "gone.nobody": "Case #{id} ({name}) is no longer yours",
    "sent_back.rework": "Rework",
    "sent_back.rework_n": "Rework (time {n})",
    "sent_back.return": "Returned before",
    "sent_back.camera": "the camera sees the violation again",
    "sent_back.by": "by {who}",
    "announce.rework": "Rework",
    "broadcast.title": "Emergency notice",
    "broadcast.from": "From",
    "detail.photos": "Photos",
    "detail.reporter": "Contact",
    "detail.source": "Source",
  },
};

/** A phone word: our table, then common.js's, then `fallback`, then the key. */
export function label(key, fallback) {
  const own = WORDS[LANG][key] ?? WORDS.zh[key];
  if (own) return own;
  const common = t(key);
  return common !== key ? common : fallback ?? key;
}

/** A phone word with {name} placeholders filled in. */
export function fill(key, values) {
  return label(key).replace(/\{(\w+)\}/g, (_, k) => String(values[k] ?? ""));
}

/** Why a case came back to its worker (returned before, or sent for rework), in words. */
export function sentBackText(ticket) {
  const back = ticket.sent_back;
  if (!back) return "";
  const head = back.action === "rework"
    ? (ticket.rework_count > 1 ? fill("sent_back.rework_n", { n: ticket.rework_count }) : label("sent_back.rework"))
    : label("sent_back.return");
  // The camera's own note is the center's English; a person's note is theirs.
  const why = String(back.actor_id || "").startsWith("camera:") ? label("sent_back.camera") : back.note;
  return why ? `${head}${LANG === "zh" ? "：" : ": "}${why}` : head;
}

/** "12:34" / "1:02:03" / "2天3时" until (or, negative, since) the deadline. */
export function fmtRemaining(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  if (d > 0) return LANG === "zh" ? `${d}天${hh}时` : `${d}d${hh}h`;
  return hh > 0 ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

function paint(el, now = Date.now()) {
  const due = parseTime(el.dataset.due);
  if (!due) return;
  const ms = due.getTime() - now;
  const overdue = ms < 0;
  el.classList.toggle("is-overdue", overdue);
  el.classList.toggle("is-soon", !overdue && ms < 10 * 60 * 1000);
  el.dataset.overdue = String(overdue);
  el.textContent = overdue ? `${label("due.overdue")} ${fmtRemaining(ms)}` : `${label("due.left")} ${fmtRemaining(ms)}`;
}

/** A live countdown element for a deadline (kept current by tickCountdowns). */
export function countdown(due) {
  const el = h("span", { class: "countdown", dataset: { due: due || "" } });
  paint(el);
  return el;
}

export function tickCountdowns(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll(".countdown[data-due]")) paint(el, now);
}
