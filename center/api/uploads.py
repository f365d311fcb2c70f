"""Photo uploads (handling evidence, patrol reports, residents): checked before stored."""

from __future__ import annotations

from fastapi import HTTPException, UploadFile

MAX_PHOTO_BYTES = 5 * 1024 * 1024
#: A multipart body with one photo and its text fields: the body limit of every route that
#: takes a file (center/api/guard.py).
UPLOAD_BODY_LIMIT = MAX_PHOTO_BYTES + 64 * 1024
_MAGIC = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}


async def read_photo(upload: UploadFile) -> tuple[bytes, str]:
    """The photo's bytes and type; 413 when too big, 415 when not a JPEG or PNG (by content,
    not by the name or header the client claims)."""
    data = await upload.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise HTTPException(413, f"photo larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MiB")
    for magic, content_type in _MAGIC.items():
        if data.startswith(magic):
            return data, content_type
    raise HTTPException(415, "photo must be a JPEG or PNG image")
