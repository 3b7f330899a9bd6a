# syntax=docker/dockerfile:1
# Build:  docker build -t omnichannel-bridge .
# Run:    docker run -v ./config.yaml:/config/config.yaml:ro -v bridge-data:/data -p 8080:8080 omnichannel-bridge

# ---- build stage: a virtualenv with the bridge and its dependencies, nothing else
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/bridge
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY adapters ./adapters
# A regular (not editable) install: the final image needs no source tree.
RUN /opt/bridge/bin/pip install .

# ---- final stage: the slim runtime, the virtualenv, an unprivileged user
FROM python:3.11-slim
LABEL org.opencontainers.image.title="omnichannel-bridge" \
      org.opencontainers.image.description="Bridge between messengers and the chatbot platform's Omnichannel API" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/bridge/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080 \
    BRIDGE_STORE_URL=sqlite:////data/bridge.db
RUN groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid bridge --no-create-home --home-dir /data --shell /usr/sbin/nologin bridge \
    && mkdir -p /data /config \
    && chown bridge:bridge /data
COPY --from=build /opt/bridge /opt/bridge
# SQLite (chat ids, queues, generated keys) lives here: mount a volume, or every restart starts afresh.
VOLUME ["/data"]
WORKDIR /data
USER bridge:bridge
# server.port's default; config.example.yaml reads it from PORT, which the health check follows too.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["omnichannel-bridge"]
# Mount the config read-only at /config/config.yaml; keep secrets in the environment (${VAR} in the file).
CMD ["run", "-c", "/config/config.yaml"]
