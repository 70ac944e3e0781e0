# Production image: the API against PostgreSQL and Redis given by PORTAL_DATABASE_URL / PORTAL_REDIS_URL.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/portal
COPY pyproject.toml requirements.lock README.md ./
COPY app ./app
COPY auth ./auth
COPY connectors ./connectors
COPY schema ./schema
RUN /opt/portal/bin/pip install --no-cache-dir -c requirements.lock .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /srv/portal portal \
    && mkdir -p /srv/portal && chown portal /srv/portal
COPY --from=build /opt/portal /opt/portal
ENV PATH=/opt/portal/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORTAL_ENVIRONMENT=production
WORKDIR /srv/portal
USER portal
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/health'); sys.exit(0)"
# Migrations first (idempotent), then the server; several such containers sit behind a load balancer.
CMD ["portal", "serve", "--host", "0.0.0.0", "--port", "8000"]
