"""A file served as a live RTSP camera, with GStreamer's RTSP server from Debian.

Runs under the system Python (``/usr/bin/python3``), which has PyGObject; it needs the Debian
packages ``gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-bad python3-gi``. The H.264 in the MP4 is sent as it is (no re-encoding),
looped, at real-time pace:

    /usr/bin/python3 simulators/rtsp_server.py clip.mp4 --port 8554 [--user u --password p]
    -> rtsp://127.0.0.1:8554/cam

It prints ``READY <url>`` on stdout once it listens. Several files as several cameras on one
port (``gridwatch sim replay --protocol rtsp``): ``--mount /cam1=a.mp4 --mount /cam2=b.mp4``
(then ``FILE`` is left out and READY names the first mount).
"""

from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?")
    parser.add_argument("--mount", action="append", default=[], metavar="PATH=FILE",
                        help="serve FILE at PATH (repeatable)")
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = [tuple(m.split("=", 1)) for m in args.mount]
    if args.file:
        mounts.insert(0, (args.path, args.file))
    if not mounts or any(len(m) != 2 for m in mounts):
        parser.error("give FILE or --mount PATH=FILE")
    auth_on = False
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        auth_on = True
    for path, file in mounts:
        factory = GstRtspServer.RTSPMediaFactory()
        # multifilesrc loops the file; qtdemux + h264parse + rtph264pay send it as it is.
        factory.set_launch(
            f'( multifilesrc location="{file}" loop=true ! qtdemux ! h264parse '
            f"config-interval=-1 ! rtph264pay name=pay0 pt=96 )")
        factory.set_shared(True)
        if auth_on:
            permissions = GstRtspServer.RTSPPermissions()
            permissions.add_role_from_structure(Gst.Structure.new_from_string(
                "user, media.factory.access=(boolean)true, "
                "media.factory.construct=(boolean)true"))
            factory.set_permissions(permissions)
        server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr)
        return 1
    print(f"READY rtsp://127.0.0.1:{args.port}{mounts[0][0]}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
