# The sidecar image: the gateway next to your database, configured by environment.
# No embedded Postgres here: set DATABASE_URL to the application's database.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080

WORKDIR /src
COPY pyproject.toml setup.cfg README.md schema.sql triggers.sql ./
COPY gateway ./gateway
RUN pip install --no-cache-dir . \
    && useradd --system --no-create-home --uid 10001 gateway \
    && rm -rf /src

WORKDIR /
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_PORT', '8080'), timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["pg-sse-gateway", "serve"]
