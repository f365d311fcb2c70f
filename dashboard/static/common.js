// Shared helpers for the gridwatch dashboard pages (wall screen, worker phone).
// Plain ES module, no dependencies: wall screens run on isolated networks.

export const API = "/api/v1";
export const SCHEMA_VERSION = 1;

// --- i18n ------------------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
export const LANG = params.get("lang") === "en" ? "en" : "zh";

const STRINGS = {
  zh: {
    "login.title": "登录",
    "login.person": "人员编号",
    "login.password": "密码",
    "login.submit": "登录",
    "login.failed": "编号或密码错误",
    "login.too_many": "尝试次数过多，请稍后再试",
    "login.expired": "登录已过期，请重新登录",
    "wall.title": "网格智慧指挥中心",
    "wall.kpi.open": "未结工单",
    "wall.kpi.waiting": "待接单",
    "wall.kpi.alerts_today": "今日告警",
    "wall.kpi.cameras": "摄像头在线",
    "wall.feed": "实时告警",
    "wall.tickets": "未结工单",
    "wall.cameras": "摄像头状态",
    "wall.col.id": "编号",
    "wall.col.type": "类型",
    "wall.col.camera": "摄像头",
    "wall.col.grid": "微网格",
    "wall.col.assignee": "网格员",
    "wall.col.state": "状态",
    "wall.col.age": "时长",
    "wall.empty.alerts": "暂无告警",
    "wall.empty.tickets": "暂无未结工单",
    "ticket.returned": "已退回",
    "wall.empty.cameras": "暂无摄像头",
    "wall.live": "实时连接",
    "alert.ended": "已结束",
    "alert.ticket": "工单",
    "alert.score": "置信度",
    "phone.title": "我的工单",
    "phone.pick": "选择网格员",
    "phone.pick.hint": "请选择您的账号以查看派给您的工单",
    "phone.empty": "暂无待办工单",
    "phone.new": "新工单",
    "phone.opened": "派单时间",
    "phone.grid": "微网格",
    "phone.alerts": "告警次数",
    "phone.switch": "切换",
    "phone.unknown_worker": "未找到该网格员",
    "post.A": "A岗",
    "post.B": "B岗",
    "action.accept": "接单",
    "action.resolve": "已处置",
    "action.return": "退回",
    "action.arrive": "已到场",
    "action.request_extension": "申请延期",
    "prompt.return": "退回原因（如：不属于本网格）",
    "prompt.extension": "需要延长多少分钟？",
    "action.failed": "操作失败",
    "load.failed": "数据加载失败",
    "no_snapshot": "无快照",
    "dismiss": "关闭",
    "wall.kpi.cases_today": "今日案件",
    "wall.kpi.closure_rate": "今日结案率",
    "wall.kpi.on_time_rate": "按时结案率",
    "wall.kpi.overdue": "超期工单",
    "wall.map": "辖区态势",
    "wall.map.open": "未结",
    "wall.map.overdue": "超期",
    "wall.map.legend.none": "无案件",
    "wall.map.legend.open": "有未结",
    "wall.map.legend.overdue": "有超期",
    "wall.map.legend.alerting": "告警中",
    "wall.hourly": "近24小时案件（按类型）",
    "wall.ranking": "本月网格排名",
    "wall.empty.ranking": "暂无排名数据",
    "col.rank": "排名",
    "col.grid": "网格",
    "col.due": "应结",
    "col.closed": "已结",
    "col.closure_rate": "结案率",
    "col.on_time_rate": "按时率",
    "col.registered": "立案",
    "col.name": "名称",
    "col.rework_rate": "返工率",
    "col.close_min": "平均结案(分)",
    "col.satisfaction": "满意度",
    "cam.alerting": "告警中",
    "emergency.banner": "应急模式",
    "emergency.district": "全街道",
    "emergency.on": "启动应急",
    "emergency.off": "解除应急",
    "emergency.confirm": "再次点击确认",
    "emergency.failed": "切换应急模式失败",
    "operator.label": "值班员",
    "leader.title": "工单调度台",
    "leader.as": "当前身份",
    "leader.tab.tickets": "工单",
    "leader.tab.indicators": "指标",
    "leader.tab.ranking": "网格排名",
    "leader.filter.state": "状态",
    "leader.filter.grid": "网格",
    "leader.filter.micro_grid": "微网格",
    "leader.filter.type": "类型",
    "leader.filter.overdue": "仅超期",
    "leader.filter.open": "仅未结",
    "leader.filter.all": "全部",
    "leader.filter.reset": "重置",
    "leader.empty": "没有符合条件的工单",
    "leader.pick": "选择左侧工单查看详情",
    "leader.timeline": "处置记录",
    "leader.actions": "可执行操作",
    "leader.no_actions": "当前身份在此状态下无可执行操作",
    "leader.note": "备注 / 原因",
    "leader.reassign_to": "改派给",
    "leader.dispatch_to": "派遣给",
    "leader.on_duty": "当班",
    "leader.note_needed": "请先在备注中写明原因",
    "leader.source": "来源",
    "leader.description": "描述",
    "leader.reporter": "联系方式",
    "leader.place": "位置",
    "leader.sent_back": "最近退回/返工",
    "leader.camera_again": "摄像头再次发现违规",
    "leader.photos": "案件照片",
    "leader.done": "操作成功",
    "leader.due": "时限",
    "leader.opened": "立案时间",
    "leader.level": "层级",
    "leader.period": "周期",
    "leader.date": "日期",
    "leader.csv": "导出 CSV",
    "leader.overdue": "超期",
    "leader.public": "公开页",
    "level.district": "街道",
    "level.grid": "网格",
    "level.micro_grid": "微网格",
    "level.worker": "网格员",
    "level.department": "职能部门",
    "level.event_type": "事件类型",
    "period.day": "日",
    "period.week": "周",
    "period.month": "月",
    "period.quarter": "季度",
    "action.verify": "核查通过",
    "action.rework": "返工",
    "action.void": "作废",
    "action.reassign": "改派",
    "action.approve_extension": "批准延期",
    "action.acknowledge": "确认督办",
    "action.dispatch": "派遣",
    "action.close": "结案",
    "action.rate": "评价",
    "action.escalate": "升级督办",
    "action.register": "立案",
    "action.attach": "关联告警",
    "action.camera_clear": "摄像头复核",
    "lang.other": "EN",
    "login.revoked": "登录已失效（密码已修改或已退出所有设备），请重新登录",
    "login.logged_out": "已退出登录",
    "login.logged_out_all": "已在所有设备退出登录，请重新登录",
    "account.menu": "账号",
    "account.logout": "退出登录",
    "account.logout.hint": "仅本设备",
    "account.logout_all": "退出所有设备",
    "account.logout_all.confirm": "再次点击确认",
    "account.logout_all.hint": "所有手机和电脑都需重新登录",
    "account.password": "修改密码",
    "account.password.current": "当前密码",
    "account.password.new": "新密码（至少8位）",
    "account.password.repeat": "再次输入新密码",
    "account.password.submit": "保存新密码",
    "account.password.cancel": "取消",
    "account.password.done": "密码已修改：本设备保持登录，其他设备需用新密码重新登录",
    "account.password.wrong": "当前密码不正确",
    "account.password.short": "新密码至少需要8个字符",
    "account.password.mismatch": "两次输入的新密码不一致",
    "account.password.conflict": "密码刚被修改过，请重新登录后再试",
    "account.close": "关闭",
    "account.failed": "操作失败",
    "role.worker": "网格员",
    "role.micro_grid_leader": "微网格长",
    "role.grid_leader": "网格长",
    "role.department_staff": "职能部门",
    "role.operator": "值班员",
    "role.engineer": "工程师",
    "role.admin": "管理员",
    "ws.online": "在线",
    "ws.offline": "离线",
    "actor.camera": "摄像头",
    "actor.system": "系统",
    "actor.resident": "居民",
    "actor.public": "居民",
    "note.routed": "自动派给 {person}（{post}）",
    "note.camera_again": "摄像头再次发现问题",
    "note.camera_clear": "摄像头确认现场已清理",
    "note.camera_clear_early": "摄像头看到现场已清理（案件尚未处置）",
    "note.camera_clear_other": "摄像头看到现场已清理，但结束的不是立案的那次告警：不作为核查",
    "note.closed_after_rating": "评价后结案",
    "note.closed_unrated": "超过评价时限无人评价，自动结案",
    "note.escalated": "{level}级督办：{reason}；已通知 {people}",
    "note.reason.limit_accept": "接单超时",
    "note.reason.limit_handle": "处置超时",
    "note.reason.limit_overall": "超过办结时限",
    "note.reason.unacknowledged": "督办未确认",
    "note.nobody": "无人（岗位空缺）",
  },
  en: {
    "login.title": "Log in",
    "login.person": "Person id",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.failed": "Wrong person id or password",
    "login.too_many": "Too many attempts, try again later",
    "login.expired": "Your login expired: please log in again",
    "wall.title": "Grid Command Center",
    "wall.kpi.open": "Open tickets",
    "wall.kpi.waiting": "Awaiting accept",
    "wall.kpi.alerts_today": "Alerts today",
    "wall.kpi.cameras": "Cameras online",
    "wall.feed": "Live alerts",
    "wall.tickets": "Open tickets",
    "wall.cameras": "Cameras",
    "wall.col.id": "ID",
    "wall.col.type": "Type",
    "wall.col.camera": "Camera",
    "wall.col.grid": "Micro-grid",
    "wall.col.assignee": "Assignee",
    "wall.col.state": "State",
    "wall.col.age": "Age",
    "wall.empty.alerts": "No alerts yet",
    "wall.empty.tickets": "No open tickets",
    "ticket.returned": "Returned",
    "wall.empty.cameras": "No cameras",
    "wall.live": "Live link",
    "alert.ended": "ended",
    "alert.ticket": "Ticket",
    "alert.score": "score",
    "phone.title": "My tickets",
    "phone.pick": "Choose worker",
    "phone.pick.hint": "Pick your account to see the tickets dispatched to you",
    "phone.empty": "No open tickets",
    "phone.new": "New ticket",
    "phone.opened": "Opened",
    "phone.grid": "Micro-grid",
    "phone.alerts": "Alerts",
    "phone.switch": "Switch",
    "phone.unknown_worker": "Unknown worker",
    "post.A": "post A",
    "post.B": "post B",
    "action.accept": "Accept",
    "action.resolve": "Resolve",
    "action.return": "Return",
    "action.arrive": "Arrived",
    "action.request_extension": "Ask for more time",
    "prompt.return": "Why return it (e.g. not my micro-grid)?",
    "prompt.extension": "How many more minutes do you need?",
    "action.failed": "Action failed",
    "load.failed": "Could not load data",
    "no_snapshot": "No snapshot",
    "dismiss": "Dismiss",
    "wall.kpi.cases_today": "Cases today",
    "wall.kpi.closure_rate": "Closure rate today",
    "wall.kpi.on_time_rate": "On-time rate",
    "wall.kpi.overdue": "Overdue",
    "wall.map": "District map",
    "wall.map.open": "open",
    "wall.map.overdue": "overdue",
    "wall.map.legend.none": "no cases",
    "wall.map.legend.open": "open cases",
    "wall.map.legend.overdue": "overdue",
    "wall.map.legend.alerting": "alerting",
    "wall.hourly": "Cases per hour by type, last 24 h",
    "wall.ranking": "Grid ranking, this month",
    "wall.empty.ranking": "No ranking yet",
    "col.rank": "Rank",
    "col.grid": "Grid",
    "col.due": "Due",
    "col.closed": "Closed",
    "col.closure_rate": "Closure",
    "col.on_time_rate": "On time",
    "col.registered": "Cases",
    "col.name": "Name",
    "col.rework_rate": "Rework",
    "col.close_min": "Avg close (min)",
    "col.satisfaction": "Satisfaction",
    "cam.alerting": "alerting",
    "emergency.banner": "EMERGENCY MODE",
    "emergency.district": "whole district",
    "emergency.on": "Start emergency",
    "emergency.off": "End emergency",
    "emergency.confirm": "Click again to confirm",
    "emergency.failed": "Could not switch emergency mode",
    "operator.label": "Operator",
    "leader.title": "Dispatch desk",
    "leader.as": "Acting as",
    "leader.tab.tickets": "Tickets",
    "leader.tab.indicators": "Indicators",
    "leader.tab.ranking": "Grid ranking",
    "leader.filter.state": "State",
    "leader.filter.grid": "Grid",
    "leader.filter.micro_grid": "Micro-grid",
    "leader.filter.type": "Type",
    "leader.filter.overdue": "Overdue only",
    "leader.filter.open": "Open only",
    "leader.filter.all": "All",
    "leader.filter.reset": "Reset",
    "leader.empty": "No tickets match",
    "leader.pick": "Pick a ticket on the left to see it",
    "leader.timeline": "Timeline",
    "leader.actions": "Actions",
    "leader.no_actions": "Nothing this person may do in this state",
    "leader.note": "Note / reason",
    "leader.reassign_to": "Reassign to",
    "leader.dispatch_to": "Dispatch to",
    "leader.on_duty": "on duty",
    "leader.note_needed": "write why in the note first",
    "leader.source": "Source",
    "leader.description": "Description",
    "leader.reporter": "Contact",
    "leader.place": "Place",
    "leader.sent_back": "Last returned / reworked",
    "leader.camera_again": "the camera sees the violation again",
    "leader.photos": "Photos of the case",
    "leader.done": "Done",
    "leader.due": "Due",
    "leader.opened": "Opened",
    "leader.level": "Level",
    "leader.period": "Period",
    "leader.date": "Date",
    "leader.csv": "Export CSV",
    "leader.overdue": "overdue",
    "leader.public": "Public page",
    "level.district": "District",
    "level.grid": "Grid",
    "level.micro_grid": "Micro-grid",
    "level.worker": "Worker",
    "level.department": "Department",
    "level.event_type": "Event type",
    "period.day": "Day",
    "period.week": "Week",
    "period.month": "Month",
    "period.quarter": "Quarter",
    "action.verify": "Verify",
    "action.rework": "Rework",
    "action.void": "Void",
    "action.reassign": "Reassign",
    "action.approve_extension": "Approve extension",
    "action.acknowledge": "Acknowledge",
    "action.dispatch": "Dispatch",
    "action.close": "Close",
    "action.rate": "Rate",
    "action.escalate": "Escalate",
    "action.register": "Registered",
    "action.attach": "Alert attached",
    "action.camera_clear": "Camera check",
    "lang.other": "中文",
    "login.revoked": "Your login was ended (password changed or logged out everywhere): please log in again",
    "login.logged_out": "Logged out",
    "login.logged_out_all": "Logged out on every device: please log in again",
    "account.menu": "Account",
    "account.logout": "Log out",
    "account.logout.hint": "this device only",
    "account.logout_all": "Log out everywhere",
    "account.logout_all.confirm": "Click again to confirm",
    "account.logout_all.hint": "every phone and computer must log in again",
    "account.password": "Change password",
    "account.password.current": "Current password",
    "account.password.new": "New password (8 characters or more)",
    "account.password.repeat": "New password again",
    "account.password.submit": "Save new password",
    "account.password.cancel": "Cancel",
    "account.password.done": "Password changed: this device stays logged in, others must log in with the new password",
    "account.password.wrong": "The current password is wrong",
    "account.password.short": "The new password needs at least 8 characters",
    "account.password.mismatch": "The two new passwords differ",
    "account.password.conflict": "The password was changed meanwhile: log in again and retry",
    "account.close": "Close",
    "account.failed": "Failed",
    "role.worker": "Grid worker",
    "role.micro_grid_leader": "Micro-grid leader",
    "role.grid_leader": "Grid leader",
    "role.department_staff": "Department",
    "role.operator": "Duty operator",
    "role.engineer": "Engineer",
    "role.admin": "Administrator",
    "ws.online": "online",
    "ws.offline": "offline",
    "actor.camera": "Camera",
    "actor.system": "System",
    "actor.resident": "Resident",
    "actor.public": "Resident",
    "note.routed": "routed to {person} ({post})",
    "note.camera_again": "the camera sees the problem again",
    "note.camera_clear": "the camera sees the place clear",
    "note.camera_clear_early": "the camera sees the place clear (before the case was handled)",
    "note.camera_clear_other": "the camera sees the place clear, but for another alert than the one that opened the case: not a verification",
    "note.closed_after_rating": "closed after the rating",
    "note.closed_unrated": "closed: nobody rated it in time",
    "note.escalated": "escalated to level {level}: {reason}; notified {people}",
    "note.reason.limit_accept": "not accepted in time",
    "note.reason.limit_handle": "not handled in time",
    "note.reason.limit_overall": "past the case's time limit",
    "note.reason.unacknowledged": "not acknowledged in time",
    "note.nobody": "nobody (the post is empty)",
  },
};

// GB/T 30428 event codes (category 05, street order). Unknown codes fall back to the server's
// event_name, then to the bare code, so a city's local extension codes still display.
const EVENT_NAMES = {
  zh: {
    "0501": "无照游商",
    "0503": "占道废品收购",
    "0504": "跨门经营",
    "0505": "机动车乱停放",
    "0506": "非机动车乱停放",
    "0507": "道路遗撒/堆物",
    "0510": "露天烧烤",
    "0599": "其他街面秩序",
  },
  en: {
    "0501": "Unlicensed roaming vendor",
    "0503": "Roadside scrap buying",
    "0504": "Trading outside the shop",
    "0505": "Motor vehicle parked illegally",
    "0506": "Non-motor vehicle parked illegally",
    "0507": "Piled materials",
    "0510": "Open-air barbecue",
    "0599": "Other street-order event",
  },
};

const STATE_NAMES = {
  zh: {
    registered: "已登记",
    dispatched: "已派遣",
    accepted: "已接单",
    handling: "处置中",
    handled: "已处置",
    verified: "已核查",
    evaluated: "已评价",
    closed: "已结案",
    void: "已作废",
  },
  en: {
    registered: "Registered",
    dispatched: "Dispatched",
    accepted: "Accepted",
    handling: "On site",
    handled: "Handled",
    verified: "Verified",
    evaluated: "Rated",
    closed: "Closed",
    void: "Void",
  },
};

const CAMERA_STATE_NAMES = {
  zh: { online: "在线", offline: "离线", frozen: "画面冻结", lagging: "延迟", unknown: "未知" },
  en: { online: "online", offline: "offline", frozen: "frozen", lagging: "lagging", unknown: "unknown" },
};

export function t(key) {
  return STRINGS[LANG][key] ?? STRINGS.zh[key] ?? key;
}

export function eventName(code, fallback) {
  return EVENT_NAMES[LANG][code] ?? fallback ?? code ?? "";
}

export function stateName(state) {
  return STATE_NAMES[LANG][state] ?? state ?? "";
}

const SOURCE_NAMES = {
  zh: { camera: "摄像头发现", resident: "居民上报", patrol: "巡查上报", open311: "Open311 接口" },
  en: { camera: "camera", resident: "resident's report", patrol: "patrol report", open311: "Open311 client" },
};

/** Where a case came from (a ticket's `source`). */
export function sourceName(source) {
  return SOURCE_NAMES[LANG][source] ?? source ?? "";
}

export function cameraStateName(state) {
  return CAMERA_STATE_NAMES[LANG][state] ?? state ?? "";
}

// Once verified the place is clear: nobody needs to go there, so screens treat it as done.
export const CLOSED_STATES = new Set(["verified", "evaluated", "closed", "void"]);
export const isOpenTicket = (ticket) => !CLOSED_STATES.has(ticket.state);

/** Translate static markup: every [data-i18n] element gets its text from the table. */
export function applyI18n(root = document) {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

/** The current URL with ?lang toggled, for a language switch link. */
export function otherLangHref() {
  const url = new URL(location.href);
  if (LANG === "en") url.searchParams.delete("lang");
  else url.searchParams.set("lang", "en");
  return url.pathname + url.search;
}

// --- DOM -------------------------------------------------------------------------------------

/**
 * Create an element: h("div", {class: "x", dataset: {id: 1}}, "text", child).
 * Children are text or nodes; text is never parsed as HTML.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** A snapshot <img>, or a placeholder when there is none or it fails to load. */
export function snapshot(url, alt, className = "snapshot") {
  const placeholder = () => h("div", { class: `${className} snapshot-missing` }, t("no_snapshot"));
  if (!url) return placeholder();
  return signedImg(url, { class: className, alt: alt || "", loading: "lazy", decoding: "async" },
    (img) => img.replaceWith(placeholder()));
}

// --- time ------------------------------------------------------------------------------------

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

// --- HTTP ------------------------------------------------------------------------------------

export class ApiError extends Error {
  /** `code`: the machine-readable reason some refusals carry ({"detail": {"code", "message"}}). */
  constructor(status, detail, code = null) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.code = code;
  }
}

function detailText(detail) {
  if (detail === null || detail === undefined) return "";
  if (typeof detail === "string") return detail;
  // FastAPI validation errors: [{loc, msg, type}, ...]
  if (Array.isArray(detail)) return detail.map((d) => d?.msg ?? JSON.stringify(d)).join("; ");
  return typeof detail.message === "string" ? detail.message : JSON.stringify(detail);
}

// --- errors shown to people ---------------------------------------------------------------
// The API refuses in English for developers and logs ("ticket 12 is not assigned to w-0111").
// People read one sentence in the page's language, chosen here from the status and the known
// shapes of the detail; the API's own words stay below it, smaller, for whoever reports it.
// A failure stays on screen until it is dismissed (or, for a load, until that load works),
// so a list reload can never wipe it before anyone read it.

const ERROR_WORDS = {
  zh: {
    "err.network": "无法连接指挥中心，请检查网络后重试",
    "err.login": "登录已失效，请重新登录",
    "err.forbidden": "您没有执行此操作的权限",
    "err.not_found": "未找到该记录（可能已被删除）",
    "err.conflict": "操作与当前状态冲突，请刷新后重试",
    "err.state": "工单当前状态不允许此操作（可能已被他人处理），已刷新",
    "err.role": "您的岗位不能执行此操作",
    "err.not_yours": "此工单已不在您名下（已改派或退回）",
    "err.needs_assignee": "请先选择处置人",
    "err.cannot_own": "所选人员不能承办工单",
    "err.concurrent": "工单刚被他人更新，请重试",
    "err.extension": "请填写延期分钟数",
    "err.no_extension": "没有待批准的延期申请",
    "err.invalid": "填写的内容有误，请检查后重试",
    "err.too_large": "照片太大",
    "err.photo_type": "照片须为 JPEG 或 PNG 格式",
    "err.too_many": "操作过于频繁，请稍后再试",
    "err.server": "指挥中心出错，请稍后再试",
    "err.unknown": "出现错误",
    "err.outside_district": "该位置不在本辖区内",
  },
  en: {
    "err.network": "Cannot reach the command center; check the connection and try again",
    "err.login": "Your login has expired; log in again",
    "err.forbidden": "You are not allowed to do this",
    "err.not_found": "Not found (it may have been removed)",
    "err.conflict": "This conflicts with the current state; reload and try again",
    "err.state": "The case's state does not allow this any more (someone may have handled it); reloaded",
    "err.role": "Your post may not do this",
    "err.not_yours": "This case is no longer assigned to you (reassigned or returned)",
    "err.needs_assignee": "Choose who handles it first",
    "err.cannot_own": "The person chosen cannot own a case",
    "err.concurrent": "Someone else just changed this case; try again",
    "err.extension": "Give the extension in minutes",
    "err.no_extension": "No extension was requested",
    "err.invalid": "Something entered is not valid; check and try again",
    "err.too_large": "The photo is too large",
    "err.photo_type": "The photo must be a JPEG or PNG",
    "err.too_many": "Too many attempts; try again later",
    "err.server": "The command center failed; try again later",
    "err.unknown": "Something went wrong",
    "err.outside_district": "That place is outside the district",
  },
};

// A refusal's `code` ("err.<code>") comes first; else [status (null: any), pattern of the API's
// detail, sentence]: the first match wins; else the status's sentence. The patterns follow the
// API's messages (center/api, center/tickets).
const ERROR_RULES = [
  [403, /is not assigned to/, "err.not_yours"],
  [null, /needs an assignee/, "err.needs_assignee"],
  [null, /cannot own a case/, "err.cannot_own"],
  [null, /changed state concurrently/, "err.concurrent"],
  [null, /^a \S+ may not /, "err.role"],
  [null, /is not allowed in state/, "err.state"],
  [null, /needs extension_min/, "err.extension"],
  [null, /no extension was requested/, "err.no_extension"],
  [null, /^too many /, "err.too_many"],
];
const ERROR_STATUS = {
  0: "err.network", 401: "err.login", 403: "err.forbidden", 404: "err.not_found",
  409: "err.conflict", 413: "err.too_large", 415: "err.photo_type", 422: "err.invalid",
  429: "err.too_many",
};

/**
 * A failure in the page's language: {text, detail, status}. `err` is an ApiError, anything
 * with `status` and `detail` (the phone's queued sends), or an Error of the page itself.
 */
export function errorText(err) {
  if (typeof err === "string") return { text: err, detail: "", status: null, key: "" }; // the page's own words
  const status = typeof err?.status === "number" ? err.status : null;
  const detail = String((status === null ? err?.message ?? err : err.detail ?? err.message) ?? "");
  const rule = ERROR_RULES.find(([s, re]) => (s === null || s === status) && re.test(detail));
  const coded = ERROR_WORDS.zh[`err.${err?.code}`] ? `err.${err.code}` : null;
  const key = coded ?? rule?.[2] ?? ERROR_STATUS[status] ?? (status >= 500 ? "err.server" : "err.unknown");
  const text = ERROR_WORDS[LANG][key] ?? ERROR_WORDS.zh[key];
  return { text, detail: detail === text ? "" : detail, status, key };
}

function errorBanner() {
  let banner = document.getElementById("error-banner");
  if (!banner) {
    banner = h("div", { id: "error-banner", class: "banner banner-error", role: "alert", hidden: true });
    document.body.prepend(banner);
  }
  return banner;
}

/**
 * Show a failure in the page's error banner (#error-banner) until the person dismisses it.
 * `what` names what failed ("派遣 #12"); `key` groups failures of one kind: a newer one replaces
 * the older, and `clearError(key)` removes it once that thing works again (loads do that;
 * a refused action stays until it is read and dismissed).
 */
export function showError(err, { what = "", key = "action" } = {}) {
  const { text, detail, status } = errorText(err);
  const banner = errorBanner();
  const item = h(
    "div",
    { class: "error-item", dataset: { key, status: status ?? "" } },
    h("div", { class: "error-body" },
      h("p", { class: "error-text" }, what ? `${what}${LANG === "zh" ? "：" : ": "}${text}` : text),
      detail ? h("p", { class: "error-detail" }, detail) : null),
    h("button", { type: "button", class: "banner-close error-dismiss", onclick: () => {
      item.remove();
      syncBanner(banner);
    } }, t("dismiss")),
  );
  const old = [...banner.querySelectorAll(".error-item")].find((el) => el.dataset.key === key);
  if (old) old.replaceWith(item);
  else banner.append(item);
  syncBanner(banner);
  return item;
}

/** Remove the failure shown under `key` (the thing that failed works again). */
export function clearError(key) {
  const banner = document.getElementById("error-banner");
  if (!banner) return;
  for (const el of banner.querySelectorAll(".error-item")) if (el.dataset.key === key) el.remove();
  syncBanner(banner);
}

function syncBanner(banner) {
  banner.hidden = !banner.querySelector(".error-item");
}

// --- login -----------------------------------------------------------------------------------
// Staff pages log in once per browser: the bearer token (never a cookie, so no CSRF) lives in
// localStorage and goes with every API call and as the websocket's first message, never in a
// URL (pictures and downloads use signed URLs, below). A 401 (expired, revoked) shows the login
// form again. Public pages (/report, /t/…) never log in.

export const TOKEN_KEY = "gridwatch.token";
/** The logged-in person ({id, name, role, micro_grid_id, grid_id, department_id}) once known. */
export let me = null;

export const getToken = () => localStorage.getItem(TOKEN_KEY) || "";
export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** Keep a login's answer (from /auth/login or /auth/password): its token and its person. */
export function storeLogin(data) {
  setToken(data.access_token);
  if (data.person) {
    me = data.person;
    localStorage.setItem("gridwatch.login.person", data.person.id);
  }
}

// Replacing the token (a password change, logging out everywhere) revokes the old one first:
// the server closes this browser's sockets (4401) and refuses requests still in flight (401)
// before the new token has arrived. While a change runs (in any tab of this browser: the mark
// is in localStorage, shared like the token), those wait for it, then carry on with the new
// token instead of showing the login form.
const CHANGING_KEY = "gridwatch.token.changing";
const CHANGE_MAX_MS = 15000;

/** Run `work` (a password change, a logout everywhere) with the token marked as changing. */
export async function whileTokenChanges(work) {
  localStorage.setItem(CHANGING_KEY, String(Date.now()));
  try {
    return await work();
  } finally {
    localStorage.removeItem(CHANGING_KEY);
  }
}

function tokenChanging() {
  const since = Number(localStorage.getItem(CHANGING_KEY) || 0);
  return since > 0 && Date.now() - since < CHANGE_MAX_MS;
}

/** After a 401/4401 for `used`: whether this browser has another token now (use it, no login). */
export async function tokenReplaced(used) {
  while (tokenChanging()) await new Promise((resolve) => setTimeout(resolve, 100));
  const current = getToken();
  return !!current && current !== used;
}

/** The login form's message for a refused token (the server's words say which case it is). */
const refusedMessage = (detail) => t(/revoked/i.test(detail || "") ? "login.revoked" : "login.expired");

// --- signed URLs -----------------------------------------------------------------------------
// A picture (<img src>) or a download link cannot send the Authorization header, and the token
// never goes in a URL (browser history, proxy logs). The center signs such URLs for this person
// for a few minutes (POST /auth/signed-urls; docs/security.md "Tokens and URLs"). URLs asked for
// in the same moment go in one call; a signed URL is reused until a minute before it expires.

const SIGN_MARGIN_S = 60;
const SIGN_BATCH_MAX = 200;
const signedUrls = new Map(); // url -> {url, exp, token}
let signQueue = null; // url -> [{resolve, reject}] waiting for the next call

/** `url` (a path under /api/v1/) signed for the logged-in person; `fresh`: never a cached one. */
export function signUrl(url, { fresh = false } = {}) {
  if (!url || !url.startsWith(`${API}/`)) return Promise.resolve(url);
  const hit = signedUrls.get(url);
  if (!fresh && hit && hit.token === getToken() && hit.exp - SIGN_MARGIN_S > Date.now() / 1000) {
    return Promise.resolve(hit.url);
  }
  if (!signQueue) {
    signQueue = new Map();
    setTimeout(signQueued, 0);
  }
  return new Promise((resolve, reject) => {
    if (!signQueue.has(url)) signQueue.set(url, []);
    signQueue.get(url).push({ resolve, reject });
  });
}

async function signQueued() {
  const queue = signQueue;
  signQueue = null;
  const now = Date.now() / 1000;
  for (const [url, hit] of signedUrls) if (hit.exp <= now) signedUrls.delete(url);
  const urls = [...queue.keys()];
  for (let i = 0; i < urls.length; i += SIGN_BATCH_MAX) {
    const batch = urls.slice(i, i + SIGN_BATCH_MAX);
    const token = getToken();
    try {
      const data = await postJSON("auth/signed-urls", { urls: batch });
      batch.forEach((url, k) => {
        signedUrls.set(url, { url: data.urls[k], exp: data.expires_at, token });
        for (const waiter of queue.get(url)) waiter.resolve(data.urls[k]);
      });
    } catch (err) {
      for (const url of batch) for (const waiter of queue.get(url)) waiter.reject(err);
    }
  }
}

/**
 * An <img> of a protected picture at `url`, signed. A failed load is retried once with a fresh
 * signature (a lazy picture may load after its signature expired); then `onFail(img)`.
 */
export function signedImg(url, attrs = {}, onFail = (img) => img.remove()) {
  const img = h("img", attrs);
  let retried = false;
  const load = (fresh) => signUrl(url, { fresh }).then((signed) => { img.src = signed; }, () => onFail(img));
  img.addEventListener("error", () => {
    if (retried) onFail(img);
    else {
      retried = true;
      load(true);
    }
  });
  load(false);
  return img;
}

/**
 * Point a link at `url`, signed (a photo, a CSV download). Signed again when a pointer, a
 * finger or the focus comes to it, so the href is current when it is followed.
 */
export function signedHref(link, url) {
  link.dataset.path = url;
  const sign = () => {
    const path = link.dataset.path;
    signUrl(path).then((signed) => { if (link.dataset.path === path) link.href = signed; }, () => {});
  };
  if (!link.dataset.signing) {
    link.dataset.signing = "1";
    for (const type of ["pointerenter", "focus", "touchstart"]) link.addEventListener(type, sign, { passive: true });
  }
  sign();
  return link;
}

let loginShown = null;

/** The login form over the page; resolves with the person once a login succeeds. */
export function showLogin(message = "") {
  if (loginShown) return loginShown;
  loginShown = new Promise((resolve) => {
    const error = h("p", { class: "login-error", role: "alert" }, message);
    const id = h("input", { id: "login-person", name: "person_id", autocomplete: "username", required: true, autocapitalize: "off", spellcheck: "false" });
    const pw = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
    const form = h("form", { class: "login-form" },
      h("h2", {}, t("login.title")),
      h("label", {}, t("login.person"), id),
      h("label", {}, t("login.password"), pw),
      h("button", { type: "submit", id: "login-submit" }, t("login.submit")),
      error);
    const overlay = h("div", { class: "login-overlay", id: "login" }, form);
    Object.assign(overlay.style, { position: "fixed", inset: "0", zIndex: "10000", display: "flex", alignItems: "center", justifyContent: "center", background: "rgba(8,12,20,0.92)" });
    Object.assign(form.style, { display: "flex", flexDirection: "column", gap: "0.6rem", padding: "1.5rem", minWidth: "16rem", background: "#18202e", color: "#e8edf5", borderRadius: "8px", font: "16px system-ui, sans-serif" });
    for (const label of form.querySelectorAll("label")) Object.assign(label.style, { display: "flex", flexDirection: "column", gap: "0.2rem" });
    id.value = localStorage.getItem("gridwatch.login.person") || "";
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      try {
        const r = await fetch(`${API}/auth/login`, {
          method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, cache: "no-store",
          body: JSON.stringify({ person_id: id.value.trim(), password: pw.value }),
        });
        const data = await r.json().catch(() => ({}));
        if (!r.ok) {
          error.textContent = r.status === 429 ? `${t("login.too_many")} (${r.headers.get("Retry-After") || "60"} s)` : t("login.failed");
          return;
        }
        storeLogin(data);
        overlay.remove();
        loginShown = null;
        resolve(data.person);
      } catch (err) {
        error.textContent = err.message || "network error";
      }
    });
    document.body.append(overlay);
    (id.value ? pw : id).focus();
  });
  return loginShown;
}

const LOGIN_MESSAGE_KEY = "gridwatch.login.message"; // shown by the login form after a reload

/** The logged-in person: checks a stored token (GET /auth/me), else shows the login form. */
export async function ensureLogin() {
  if (getToken()) {
    try {
      const r = await fetch(`${API}/auth/me`, { headers: { Authorization: `Bearer ${getToken()}` }, cache: "no-store" });
      if (r.ok) {
        me = await r.json();
        return me;
      }
      if (r.status === 401) {
        setToken("");
        const data = await r.json().catch(() => ({}));
        return showLogin(refusedMessage(detailText(data.detail)));
      }
    } catch {
      // offline (the phone): keep the stored token, the page works from its queue
      return me;
    }
  }
  const message = sessionStorage.getItem(LOGIN_MESSAGE_KEY) || "";
  sessionStorage.removeItem(LOGIN_MESSAGE_KEY);
  return showLogin(message);
}

/** Log out on this device: forget the token and start the page again at the login form. */
export function logOut(message = "") {
  setToken("");
  me = null;
  if (message) sessionStorage.setItem(LOGIN_MESSAGE_KEY, message);
  location.reload();
}

/** Forget the token and show the login form again (a "log out" button, or a 401). */
export function relogin(message = "") {
  setToken("");
  me = null;
  return showLogin(message).then(() => location.reload());
}

/** fetch JSON from the center; throws ApiError carrying the server's "detail" on failure. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, headers: { Accept: "application/json" }, signal, cache: "no-store" };
  const token = getToken();
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body instanceof FormData) {
    init.body = body; // multipart: the browser sets Content-Type with its boundary
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path.startsWith("/") ? path : `${API}/${path}`, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, err.message || "network error");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  const detail = data && typeof data === "object" ? detailText(data.detail) : detailText(data);
  if (response.status === 401) {
    // Revoked by a password change made here (or in another tab): retry with the new token.
    if (token && (await tokenReplaced(token))) return api(path, { method, body, signal });
    relogin(refusedMessage(detail));
  }
  if (!response.ok) {
    const code = typeof data?.detail?.code === "string" ? data.detail.code : null;
    throw new ApiError(response.status, detail || `${response.status} ${response.statusText}`, code);
  }
  return data;
}

export const getJSON = (path, opts) => api(path, opts);
export const postJSON = (path, body, opts) => api(path, { ...opts, method: "POST", body });

// --- websocket -------------------------------------------------------------------------------

/** The page's connection light (#ws-status): its word, class and data-state (tests wait on it). */
export function setWsStatus(online) {
  const el = document.getElementById("ws-status");
  const word = online ? "online" : "offline";
  el.textContent = t(`ws.${word}`);
  el.className = `ws-status ${word}`;
  el.dataset.state = word;
}

/**
 * A websocket to the center that reconnects by itself with exponential backoff and jitter.
 *
 *   const live = new LiveSocket("/ws", {
 *     onOpen: () => reloadState(),       // on every (re)connect, once the token is accepted: refetch
 *     onMessage: (msg) => ...,           // parsed {schema_version, type, at, data}
 *     onStatus: (online) => ...,
 *   });
 *   live.start();
 */
export class LiveSocket {
  constructor(path, { onOpen, onMessage, onStatus, minDelay = 500, maxDelay = 15000 } = {}) {
    this.path = path;
    this.onOpen = onOpen;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.stopped = true;
    this.online = false;
  }

  get url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${this.path}`;
  }

  start() {
    this.stopped = false;
    // Reconnect at once when the network or the tab comes back instead of waiting out a backoff.
    this._wake = () => {
      if (!this.stopped && !this.ws && document.visibilityState !== "hidden") this._connectNow();
    };
    window.addEventListener("online", this._wake);
    document.addEventListener("visibilitychange", this._wake);
    this._connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener("online", this._wake);
    document.removeEventListener("visibilitychange", this._wake);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this._setOnline(false);
  }

  _setOnline(online) {
    if (this.online === online) return;
    this.online = online;
    this.onStatus?.(online);
  }

  _connectNow() {
    clearTimeout(this.timer);
    this.attempt = 0;
    this._connect();
  }

  _connect() {
    if (this.stopped || this.ws) return;
    let ws;
    const token = getToken();
    try {
      ws = new WebSocket(this.url);
    } catch {
      this._schedule();
      return;
    }
    this.ws = ws;
    // The token goes as the first message, never in the URL (docs/protocol.md); the server
    // answers "hello" once it has checked it, and only then is the page live.
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", token })));
    ws.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!msg || typeof msg !== "object" || msg.schema_version !== SCHEMA_VERSION) return;
      if (msg.type === "hello") this._live();
      try {
        this.onMessage?.(msg);
      } catch (err) {
        console.error(err);
      }
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._setOnline(false);
      if (event.code === 4401 || event.code === 4403) {
        // The token is gone or expired: log in again (the page reloads after), unless this
        // browser has a new one by now (a password change): then reconnect with that.
        tokenReplaced(token).then((replaced) => {
          if (this.stopped) return;
          if (replaced) {
            this._connectNow();
            return;
          }
          this.stop();
          relogin(event.code === 4401 ? refusedMessage(event.reason) : t("login.expired"));
        });
        return;
      }
      this._schedule();
    });
    // "error" is always followed by "close"; nothing to do here.
  }

  _live() {
    this.attempt = 0;
    this._setOnline(true);
    try {
      this.onOpen?.();
    } catch (err) {
      console.error(err);
    }
  }

  _schedule() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const base = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => this._connect(), delay);
  }
}

/**
 * Keeps the newer of two copies of a record (ticket, camera): a websocket message can overtake a
 * REST response that was already in flight, so never let an older copy replace a newer one.
 */
export function newer(current, incoming) {
  if (!current) return incoming;
  const a = parseTime(current.updated_at);
  const b = parseTime(incoming.updated_at);
  if (a && b && b < a) return current;
  return incoming;
}

export const putJSON = (path, body, opts) => api(path, { ...opts, method: "PUT", body });

const ACTORS = new Set(["system", "resident", "public"]);

/**
 * Who did something, in words: a person's name (`nameOf(id)`), "摄像头 <camera name>" for a
 * camera (`camera:<id>`), "系统" for the center itself. An unknown id shows as it is.
 */
export function actorName(id, nameOf = () => null) {
  const s = String(id ?? "");
  if (s.startsWith("camera:")) return `${t("actor.camera")} ${nameOf(s.slice(7)) ?? s.slice(7)}`;
  if (ACTORS.has(s)) return t(`actor.${s}`);
  return nameOf(s) ?? s;
}

const fill = (text, vars) => text.replace(/\{(\w+)\}/g, (_, name) => vars[name] ?? "");

/**
 * A ledger note in the page's language: the center's own notes come with `note_key` and
 * `note_args` (center/tickets/notes.py); a note a person typed is shown as written.
 */
export function noteText(entry, nameOf = () => null) {
  const args = entry.note_args || {};
  switch (entry.note_key) {
    case "routed":
      return fill(t("note.routed"), {
        person: nameOf(args.person) ?? args.person,
        post: `${t(`role.${args.role}`)}${args.post ? ` ${t(`post.${args.post}`)}` : ""}`,
      });
    case "escalated":
      return fill(t("note.escalated"), {
        level: args.level,
        reason: t(`note.reason.${args.reason}`),
        people: (args.people || []).map((id) => nameOf(id) ?? id).join(LANG === "zh" ? "、" : ", ") || t("note.nobody"),
      });
    case null:
    case undefined:
      return entry.note || "";
    default:
      return t(`note.${entry.note_key}`);
  }
}

/** A ledger action's display name (unknown actions show as they are). */
export function actionName(action) {
  const key = `action.${action}`;
  const text = t(key);
  return text === key ? action : text;
}

/** 0.9372 -> "93.7%"; null (nothing due) -> "—". */
export function fmtRate(value, digits = 1) {
  return value === null || value === undefined || !Number.isFinite(Number(value))
    ? "—"
    : `${(Number(value) * 100).toFixed(digits)}%`;
}

/** The event codes of the code table, in order (filters, legends). */
export const EVENT_CODES = Object.keys(EVENT_NAMES.zh);
