# One image for every role: the gateway, auth_service, facturation_service and their migrations.
# The role is the command, e.g.
#   docker run IMAGE python -m auth_service migrate
#   docker run IMAGE python -m facturation_service serve --host 0.0.0.0 --port 8002
# Pin the base by digest in your registry mirror if you need bit-for-bit rebuilds; the patch
# tag below keeps rebuilds on the same Python and Debian release.
ARG PYTHON_IMAGE=python:3.12.12-slim-bookworm

# --- build: wheels for the project and its runtime dependencies, installed into a venv ---------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# Only what the wheel needs: no tests, no dev tooling, no stripe_sandbox (a dev stand-in).
COPY pyproject.toml README.md ./
COPY shared/ shared/
COPY auth_service/ auth_service/
COPY facturation_service/ facturation_service/
COPY gateway/ gateway/
# The runtime dependencies only: the `dev` extra is never installed into the image.
RUN pip wheel --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --find-links /wheels facturation

# --- runtime: the venv on a clean slim base, no compiler, no pip cache, non-root ------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="facturation" \
      org.opencontainers.image.description="gateway, auth_service and facturation_service in one image"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HOST=0.0.0.0
# A named user for tools that look one up; manifests run as the same numeric id.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# Root-owned and empty: `python -m` puts the working directory first on sys.path, so it must
# not be writable by the service. Nothing is written outside /tmp (HOME), so the root
# filesystem can be mounted read-only.
WORKDIR /app
USER 10001:10001
# gateway, auth_service, facturation_service
EXPOSE 8000 8001 8002
CMD ["python", "-m", "gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
