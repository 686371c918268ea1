# syntax=docker/dockerfile:1
# Arbor console image: `docker build -t arbor . && docker run -p 8501:8501 -e ARBOR_AUTH=... arbor`
# The console binds 0.0.0.0 inside the container; the entrypoint refuses ARBOR_AUTH=none unless
# ARBOR_ALLOW_ANONYMOUS=1 (deploy/docker_entrypoint.py).

# ---- builder: resolve the pinned runtime dependencies into a venv -------------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# Runtime dependencies only: the test and lint tools stay out of the image.
RUN grep -vE '^(pytest|pytest-timeout|hypothesis|statsmodels|playwright|ruff|import-linter|mypy|types-PyYAML)==' /tmp/requirements.txt \
        > /tmp/requirements-runtime.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements-runtime.txt

# ---- runtime -------------------------------------------------------------------
FROM python:3.11-slim AS runtime

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

RUN groupadd --system arbor && useradd --system --gid arbor --home-dir /app --shell /usr/sbin/nologin arbor

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY --chown=arbor:arbor . /app
# Runtime files (SQLite store, ...) go under data/runtime, which must be writable.
RUN mkdir -p /app/data/runtime && chown -R arbor:arbor /app/data/runtime

USER arbor

# 8501: the console; 9464: the Prometheus exporter (ARBOR_METRICS_PORT, 0 disables it).
EXPOSE 8501 9464

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status == 200 else 1)"]

# Refuses to start an unauthenticated console on every interface unless ARBOR_ALLOW_ANONYMOUS=1.
ENTRYPOINT ["python", "/app/deploy/docker_entrypoint.py"]
CMD ["streamlit", "run", "app/main.py", "--server.address", "0.0.0.0", "--server.port", "8501"]
