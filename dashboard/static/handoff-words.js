// Words of the chain of command (docs/tickets.md "Hand-off, escalation by hand, urging"): the
// actions hand_off and urge wherever a ledger or a button names them (ledger.js imports this),
// the phone's urge message (phone-urge.js) and the leader view's hand-off and department queue
// (leader-handoff.js). Data only: i18n.js's t() looks them up.
import { addWords } from "./i18n.js";

addWords({
  zh: {
    "action.hand_off": "移交部门",
    "action.urge": "催办",
    "urge.title": "督办催办",
    "urge.text": "工单 #{id}（{name}）被催办，请尽快处理",
    "urge.by": "催办人",
    "handoff.to": "移交至",
    "handoff.department": "承办部门",
    "handoff.queue": "本部门待办",
    "handoff.call": "致电",
    "handoff.escalate_reason": "请在备注中填写升级原因",
  },
  en: {
    "action.hand_off": "Hand off to department",
    "action.urge": "Urge",
    "urge.title": "Urged",
    "urge.text": "Case #{id} ({name}) has been urged: please deal with it now",
    "urge.by": "Urged by",
    "handoff.to": "Hand off to",
    "handoff.department": "Department",
    "handoff.queue": "My department's queue",
    "handoff.call": "Call",
    "handoff.escalate_reason": "Say why in the note to escalate",
  },
});
