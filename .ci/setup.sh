#!/usr/bin/env bash
# Installs everything gridwatch needs on a fresh Debian 12 machine: Debian packages (PostgreSQL,
# Mosquitto, Node.js + npm; with --test also Chromium for the page tests and GStreamer's RTSP
# server for the camera tests), the dashboard's npm libraries and the project's virtualenv.
# Idempotent and quiet when nothing is missing; it never asks questions.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v npm >/dev/null || need+=(nodejs npm)  # the dashboard's libraries, below
if [ "$want_test" = 1 ]; then
    [ -x /usr/lib/chromium/chromium ] || need+=(chromium)
    [ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need+=(fonts-noto-cjk)
    /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null \
        || need+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
                  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
fi
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "gridwatch needs these Debian packages; install them as root: apt-get install ${need[*]}" >&2
        exit 1
    fi
    echo "Installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The dashboard's front-end libraries (ECharts, Leaflet) from npm, served by the center at
# /vendor: nothing is loaded from a CDN (wall screens run on isolated networks).
npm_stamp=dashboard/node_modules/.gridwatch-installed
npm_sig=$(cat dashboard/package.json dashboard/package-lock.json | sha256sum | cut -c1-16)
if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$npm_sig" ]; then
    echo "Installing the dashboard's libraries (npm ci in dashboard/)"
    if ! npm ci --prefix dashboard --no-audit --no-fund --loglevel=error >/dev/null; then
        echo "npm ci --prefix dashboard failed" >&2
        exit 1
    fi
    echo "$npm_sig" > "$npm_stamp"
fi

stamp=.venv/.installed
sig=$(cat pyproject.toml simulators/pyproject.toml .ci/constraints.txt .ci/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sig" ]; then
    exit 0
fi
echo "Setting up .venv (first run takes a few minutes; log in .venv/install.log)"
[ -x .venv/bin/python ] || python3 -m venv .venv
log=.venv/install.log
: > "$log"
pip() {
    if ! .venv/bin/python -m pip --disable-pip-version-check "$@" >>"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "pip $* failed; the whole log is in $log" >&2
        exit 1
    fi
}
pip install --upgrade pip setuptools wheel
# torch first, from the pinned CPU build: any looser spec pulls several GB of CUDA packages.
pip install -c .ci/constraints.txt torch==2.13.0
# gridwatch and, as a distribution of their own, the simulators (`gridwatch sim`, `gridwatch demo`;
# the production package does not ship them).
pip install -c .ci/constraints.txt -e '.[dev]' -e simulators/
# ultralytics depends on the GUI build of OpenCV, which needs libGL and shadows the headless
# build (same cv2 module). Keep only the headless one.
if .venv/bin/python -m pip show opencv-python >/dev/null 2>&1; then
    headless=$(.venv/bin/python -m pip show opencv-python-headless | awk '/^Version/{print $2}')
    pip uninstall -y opencv-python
    pip install --force-reinstall --no-deps "opencv-python-headless==$headless"
fi
.venv/bin/python -c "import av, cv2, onnxruntime, torch, fastapi, psycopg, aiomqtt, shapely"
echo "$sig" > "$stamp"
