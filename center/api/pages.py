"""The pages the center serves: wall screen, worker phone (an installable PWA: manifest and
service worker), engineer view, the public per-ticket page, the API docs."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from wire.paths import DASHBOARD_DIR

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.get("/wall")
async def wall() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "wall.html")


@router.get("/phone")
async def phone() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "phone.html")


@router.get("/manifest.webmanifest")
async def manifest() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "manifest.webmanifest",
                        media_type="application/manifest+json")


@router.get("/sw.js")
async def service_worker() -> FileResponse:
    """The phone's service worker, from the root so its scope covers /phone, /static and the
    API; never cached by HTTP, so a new version is picked up on the next visit."""
    return FileResponse(DASHBOARD_DIR / "sw.js", media_type="text/javascript",
                        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"})


@router.get("/engineer")
async def engineer() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "engineer.html")


@router.get("/leader")
async def leader() -> FileResponse:
    """Leader / operator view: tickets with filters, timelines and actions; indicators."""
    return FileResponse(DASHBOARD_DIR / "leader.html")


@router.get("/t/{token}")
async def public_ticket_page(token: str) -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "public.html")


@router.get("/report")
async def resident_report_form() -> FileResponse:
    return FileResponse(DASHBOARD_DIR / "report.html")


@router.get("/docs")
async def api_docs() -> FileResponse:
    """Swagger UI from /vendor (npm), not FastAPI's CDN page: it works offline."""
    return FileResponse(DASHBOARD_DIR / "docs.html")
