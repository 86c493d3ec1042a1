# The function runtime image: serves a user's handler (python -m fnmesh.functions) and
# fetches a revision's artifact in the replica's init container (python -m
# fnmesh.functions.fetch). It carries only what the runtime imports (the standard
# library, httptools, uvloop); a function's own dependencies come with its artifact.
# Build from the repository's root:
#   docker build -f charts/fnmesh/images/runtime.Dockerfile -t fnmesh/runtime:0.1.0 .

FROM python:3.11-slim AS build
RUN python -m venv /opt/fnmesh
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY platform ./platform
COPY activator ./activator
COPY autoscaler ./autoscaler
COPY functions ./functions
RUN /opt/fnmesh/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps . \
    && /opt/fnmesh/bin/pip install --no-cache-dir --disable-pip-version-check \
        "httptools>=0.6" "uvloop>=0.19"

FROM python:3.11-slim
COPY --from=build /opt/fnmesh /opt/fnmesh
ENV PATH=/opt/fnmesh/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /tmp
CMD ["python", "-m", "fnmesh.functions", "--help"]
