// Words of the verdict control (verdict.js) on the wall, the leader view and the phone.
// Data only: i18n.js's t() looks them up.
import { addWords } from "./i18n.js";

addWords({
  zh: {
    "verdict.title": "研判",
    "verdict.confirmed": "确认违规",
    "verdict.false_alarm": "误报",
    "verdict.nothing_there": "现场无此情况",
    "verdict.reason": "误报原因",
    "verdict.note": "说明（选填）",
    "verdict.void": "同时作废案件",
    "verdict.submit": "提交",
    "verdict.cancel": "取消",
    "verdict.current": "当前研判",
    "verdict.none": "尚未研判",
    "verdict.done": "已记录研判",
    "verdict.by": "由",
    "verdict.kpi": "今日误报",
    "verdict.badge": "误报",
  },
  en: {
    "verdict.title": "Verdict",
    "verdict.confirmed": "Confirmed",
    "verdict.false_alarm": "False alarm",
    "verdict.nothing_there": "Nothing there",
    "verdict.reason": "Why a false alarm",
    "verdict.note": "Note (optional)",
    "verdict.void": "Void the case too",
    "verdict.submit": "Submit",
    "verdict.cancel": "Cancel",
    "verdict.current": "Current verdict",
    "verdict.none": "Not judged yet",
    "verdict.done": "Verdict recorded",
    "verdict.by": "by",
    "verdict.kpi": "False alarms today",
    "verdict.badge": "false",
  },
});
