# syntax=docker/dockerfile:1
# The project's runtime image: every processing job of the pipeline, the training job, the monitoring
# job and the endpoint run in it. It is built from uv.lock (nothing is installed when a job starts, so
# jobs can run with network isolation), on the Python minor version of .python-version. Its entry
# points follow SageMaker's bring-your-own-container contracts (src/mlops_kit/container.py): `train`,
# `serve`, and `python3 -m MODULE ARGS` for processing jobs. Its tag is a hash of this file and of
# everything it copies (mlops_kit.runtime.image_tag), so name sources here, never patterns.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG PYTHON_VERSION
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /build
COPY pyproject.toml uv.lock ./
# Exactly the lock (--frozen), without the dev tools; the project's code is copied as source below.
RUN uv sync --frozen --no-dev --no-install-project --python "python${PYTHON_VERSION}"

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN useradd --create-home --uid 1000 --user-group mlops \
    && mkdir -p /opt/ml \
    && chown mlops:mlops /opt/ml
COPY --from=build /opt/venv /opt/venv
COPY src/mlops_kit /app/mlops_kit
COPY pipelines /app/pipelines
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/tmp/numba
WORKDIR /app
USER 1000:1000
EXPOSE 8080
ENTRYPOINT ["python3", "-m", "mlops_kit.container"]
