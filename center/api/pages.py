"""The pages the center serves: wall screen, worker phone, the public per-ticket page."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from center.paths import DASHBOARD_DIR

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/wall")
async def wall() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "wall.html")


@router.get("/phone")
async def phone() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "phone.html")


@router.get("/t/{token}")
async def public_ticket_page(token: str) -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "public.html")


@router.get("/report")
async def resident_report_form() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "report.html")
