"""Notifications: phone messages with delivery / read receipts and catch-up, and outbound
notifiers (generic webhook, WeCom and DingTalk group robots) with persisted retries.
See docs/notifications.md."""

from center.services.notify.service import Notifications

__all__ = ["Notifications"]
