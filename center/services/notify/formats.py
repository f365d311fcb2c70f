"""What each outbound notifier receives: one HTTP request built from one stored payload.

The payload (``event``, ``reason``, ``recipients``, ``ticket``) is stored with the notification,
so a retry or a restart sends what was true when the ticket changed. A new notifier type is one
function here and one entry in ``BUILDERS``.

Example:
    >>> from center.platform.settings import WeComTarget
    >>> robot = WeComTarget(type="wecom", url="https://example.test/webhook/send?key=k")
    >>> payload = {"event": "new", "reason": "new", "recipients": {}, "ticket": {"id": 7}}
    >>> req = build(robot, payload, 0)
    >>> req.json["msgtype"]
    'markdown'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from center.platform.settings import DingTalkTarget, WebhookTarget, WeComTarget

#: Chinese headline per event, for the group robots.
TITLES = {
    "new": "新工单", "reassigned": "工单改派", "reassigned_away": "工单已改派他人",
    "rework": "工单返工", "returned": "工单退回",
    "extension_requested": "申请延期", "extension_approved": "延期已批准",
    "escalated": "工单升级", "handed_off": "工单移交部门", "urged": "工单催办",
}
#: WeCom rejects markdown content longer than 4096 bytes.
WECOM_MAX_BYTES = 4096


@dataclass(frozen=True)
class OutboundRequest:
    url: str
    json: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    #: Group robots answer HTTP 200 with ``errcode`` != 0 on failure.
    check_errcode: bool = False

    def body(self) -> bytes:
        return json.dumps(self.json, ensure_ascii=False, separators=(",", ":")).encode()


def event_of(reason: str) -> str:
    """``'escalated (level 1)'`` -> ``'escalated'``; ``'extension requested'`` ->
    ``'extension_requested'``."""
    return reason.split(" (", 1)[0].strip().replace(" ", "_")


def markdown(payload: dict[str, Any]) -> tuple[str, str]:
    """(title, markdown text) for a person reading a group chat on a phone."""
    t = payload["ticket"]
    title = f"{TITLES.get(payload['event'], payload['event'])} #{t.get('id')}"
    name = t.get("event_name") or t.get("event_type") or ""
    lines = [f"### {title} {name}".rstrip(), f"> {payload['reason']}", ""]
    facts = [
        ("事件", f"{name} ({t.get('event_type')})" if t.get("event_type") else name),
        ("状态", t.get("state")),
        ("网格", t.get("micro_grid_name") or t.get("micro_grid_id")),
        ("摄像头", t.get("camera_name") or t.get("camera_id")),
        ("处置人", t.get("assignee_name") or t.get("assignee_id")),
        ("升级", f"第 {t['escalation_level']} 级" if t.get("escalation_level") else None),
        ("期限", t.get("stage_due_at") or t.get("due_at")),
        ("描述", t.get("description")),
    ]
    lines += [f"- **{k}**: {v}" for k, v in facts if v]
    who = payload.get("recipients") or {}
    if who:
        lines.append(f"- **通知**: {', '.join(sorted(who))}")
    return title, "\n".join(lines)


def webhook(target: WebhookTarget, payload: dict[str, Any], now_ms: int) -> OutboundRequest:
    req = OutboundRequest(target.url, payload,
                          headers={**target.headers, "X-Gridwatch-Event": payload["event"]})
    if target.secret is not None:
        digest = hmac.new(target.secret.get_secret_value().encode(), req.body(),
                          hashlib.sha256).hexdigest()
        req.headers["X-Gridwatch-Signature"] = f"sha256={digest}"
    return req


def wecom(target: WeComTarget, payload: dict[str, Any], now_ms: int) -> OutboundRequest:
    _, text = markdown(payload)
    raw = text.encode()
    if len(raw) > WECOM_MAX_BYTES:
        text = raw[:WECOM_MAX_BYTES - 3].decode(errors="ignore") + "…"
    return OutboundRequest(target.url, {"msgtype": "markdown", "markdown": {"content": text}},
                           check_errcode=True)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")).
    It travels URL-encoded in the ``sign`` query parameter next to ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def dingtalk(target: DingTalkTarget, payload: dict[str, Any], now_ms: int) -> OutboundRequest:
    title, text = markdown(payload)
    body: dict[str, Any] = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    if target.at_mobiles:
        body["at"] = {"atMobiles": target.at_mobiles, "isAtAll": False}
        body["markdown"]["text"] += "\n\n" + " ".join(f"@{m}" for m in target.at_mobiles)
    url = target.url
    if target.secret is not None:  # added to the URL's access_token, not in place of it
        url = str(httpx.URL(url).copy_merge_params(
            {"timestamp": str(now_ms),
             "sign": dingtalk_sign(target.secret.get_secret_value(), now_ms)}))
    return OutboundRequest(url, body, check_errcode=True)


BUILDERS: dict[str, Callable[[Any, dict[str, Any], int], OutboundRequest]] = {
    "webhook": webhook, "wecom": wecom, "dingtalk": dingtalk,
}


def build(target: WebhookTarget | WeComTarget | DingTalkTarget, payload: dict[str, Any],
          now_ms: int) -> OutboundRequest:
    return BUILDERS[target.type](target, payload, now_ms)
