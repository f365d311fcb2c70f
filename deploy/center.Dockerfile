# syntax=docker/dockerfile:1
# The center's image: Debian 12 slim, gridwatch installed the way .ci/setup.sh installs it
# (torch's CPU build first, then the project from its source tree, editable, with every
# package pinned by .ci/constraints.txt; the dashboard's npm libraries by `npm ci`), run as an
# unprivileged user, healthy when /healthz answers 200 (database, broker and ingest all well:
# docs/reliability.md). The install is editable because the center serves dashboard/ and
# center/defaults/ from the source tree (wire/paths.py).
#
#   docker build -f deploy/center.Dockerfile -t gridwatch-center .      (from the repository root)
#
# Settings come from GRIDWATCH_* variables (center/platform/settings.py); docs/deployment.md.

FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/gridwatch
COPY dashboard/package.json dashboard/package-lock.json dashboard/
RUN npm ci --prefix dashboard --no-audit --no-fund --loglevel=error
COPY pyproject.toml README.md ./
COPY .ci/constraints.txt .ci/constraints.txt
COPY wire wire
COPY center center
COPY edge edge
COPY gridwatch gridwatch
COPY models models
COPY dashboard dashboard
# torch and torchvision from PyTorch's CPU index (PyPI's Linux wheels pull the CUDA stack);
# then the project against the pins, and the headless OpenCV kept instead of ultralytics's GUI
# build (as .ci/setup.sh does).
RUN python3 -m venv .venv \
 && .venv/bin/pip install --no-cache-dir --upgrade pip setuptools wheel \
 && .venv/bin/pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
        torch==2.13.0 torchvision==0.28.0 \
 && .venv/bin/pip install --no-cache-dir -c .ci/constraints.txt -e . \
 && if .venv/bin/pip show opencv-python >/dev/null 2>&1; then \
        headless=$(.venv/bin/pip show opencv-python-headless | awk '/^Version/{print $2}') \
        && .venv/bin/pip uninstall -y opencv-python \
        && .venv/bin/pip install --no-cache-dir --force-reinstall --no-deps \
               "opencv-python-headless==$headless"; \
    fi \
 && .venv/bin/python -c "import fastapi, psycopg, aiomqtt, shapely, center.app"

FROM debian:12-slim
# postgresql-client: pg_dump/pg_restore for `gridwatch center backup|restore` (15, the
# server's major version in deploy/compose.yaml: pg_dump must be at least as new as the server).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libgomp1 postgresql-client ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/gridwatch --create-home gridwatch
COPY --from=build /opt/gridwatch /opt/gridwatch
ENV PATH=/opt/gridwatch/.venv/bin:$PATH \
    GRIDWATCH_DATA_DIR=/var/lib/gridwatch \
    GRIDWATCH_CLIPS__DIR=/var/lib/gridwatch/clips \
    GRIDWATCH_HTTP__HOST=0.0.0.0 \
    GRIDWATCH_HTTP__PORT=8000
USER 10001:10001
WORKDIR /var/lib/gridwatch
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["gridwatch", "center", "run"]
