# The platform image: API (builder, identity endpoint, artifacts), gateway, activator,
# autoscaler, operator, and the replica proxy beside every function replica.
# Build from the repository's root:
#   docker build -f charts/fnmesh/images/platform.Dockerfile -t fnmesh/platform:0.1.0 .

FROM python:3.11-slim AS build
RUN python -m venv /opt/fnmesh
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY platform ./platform
COPY activator ./activator
COPY autoscaler ./autoscaler
COPY functions ./functions
RUN /opt/fnmesh/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.11-slim
# git: the API's git receiver builds pushed commits
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/fnmesh /opt/fnmesh
ENV PATH=/opt/fnmesh/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /tmp
CMD ["python", "-m", "fnmesh.platform.cluster.api"]
