"""Camera URLs carry passwords (``rtsp://admin:pw@…``, ``?token=…``): nothing that leaves a
capture thread (log lines, status details, exception text from FFmpeg) may contain them."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")
_SECRET_PARAM = re.compile(r"(?i)\b(password|passwd|pwd|pass|token|key|secret|auth)=[^&\s'\"]+")


def redact(source: str) -> str:
    """The source with any password (userinfo or secret query parameter) replaced by ``***``."""
    parts = urlsplit(source)
    if parts.password is not None:
        netloc = f"{parts.username}:***@{parts.hostname}" + (
            f":{parts.port}" if parts.port else "")
        source = urlunsplit(parts._replace(netloc=netloc))
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", source)


def scrub(text: str, source: str | None = None) -> str:
    """``text`` (an error message, a log line) with credentials removed: the exact source URL
    is replaced by its redacted form, then any other ``scheme://user:pw@`` or ``token=…``."""
    if source:
        parts = urlsplit(source)
        text = text.replace(source, redact(source))
        if parts.password:
            text = text.replace(parts.password, "***")
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", text)
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", text)


class CredentialFilter(logging.Filter):
    """A handler filter that scrubs every record's final message, for the one place where
    ``main`` configures logging (it also catches third-party loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
