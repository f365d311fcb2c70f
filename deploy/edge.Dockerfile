# syntax=docker/dockerfile:1
# An edge worker's image: Debian 12 slim, gridwatch installed the way .ci/setup.sh installs it
# (torch's CPU build first, then the project from its source tree with the pinned
# constraints), run as an unprivileged user. The edge's YAML, its MQTT password file and its
# detector weights are mounted (docs/deployment.md "Edge boxes"); most boxes run the edge
# under systemd instead (deploy/systemd/gridwatch-edge.service).
#
#   docker build -f deploy/edge.Dockerfile -t gridwatch-edge .          (from the repository root)
#   docker build -f deploy/edge.Dockerfile --build-arg SIMULATORS=1 -t gridwatch-edge-sim .
#
# SIMULATORS=1 adds the simulators (`gridwatch sim alerts`): the simulated edge of
# deploy/compose.yaml. No HEALTHCHECK: the edge serves no HTTP (it has no /healthz); its
# health is seen at the center (heartbeats -> camera states on the wall and /api/v1/edges), and
# a worker that fails exits non-zero, so `restart: unless-stopped` / systemd restart it.

FROM debian:12-slim AS build
ARG SIMULATORS=0
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/gridwatch
COPY pyproject.toml README.md ./
COPY .ci/constraints.txt .ci/constraints.txt
COPY wire wire
COPY center center
COPY edge edge
COPY gridwatch gridwatch
COPY models models
COPY simulators simulators
RUN python3 -m venv .venv \
 && .venv/bin/pip install --no-cache-dir --upgrade pip setuptools wheel \
 && .venv/bin/pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
        torch==2.13.0 torchvision==0.28.0 \
 && .venv/bin/pip install --no-cache-dir -c .ci/constraints.txt -e . \
 && if [ "$SIMULATORS" = 1 ]; then \
        .venv/bin/pip install --no-cache-dir -c .ci/constraints.txt -e simulators/; \
    fi \
 && if .venv/bin/pip show opencv-python >/dev/null 2>&1; then \
        headless=$(.venv/bin/pip show opencv-python-headless | awk '/^Version/{print $2}') \
        && .venv/bin/pip uninstall -y opencv-python \
        && .venv/bin/pip install --no-cache-dir --force-reinstall --no-deps \
               "opencv-python-headless==$headless"; \
    fi \
 && .venv/bin/python -c "import av, cv2, onnxruntime, edge.runner"

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libgomp1 libglib2.0-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/gridwatch --create-home gridwatch
COPY --from=build /opt/gridwatch /opt/gridwatch
ENV PATH=/opt/gridwatch/.venv/bin:$PATH \
    GRIDWATCH_DATA_DIR=/var/lib/gridwatch \
    YOLO_AUTOINSTALL=0
USER 10001:10001
WORKDIR /var/lib/gridwatch
HEALTHCHECK NONE
CMD ["gridwatch", "edge", "run", "--config", "/etc/gridwatch/edge.yaml"]
