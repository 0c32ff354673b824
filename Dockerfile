# syntax=docker/dockerfile:1
# Slim, non-root image of `heteroscale run`: the operator and what it imports, nothing of the offline
# tools (`simulate`, `stragglers`: the [sim] and [stragglers] extras). The runtime dependencies are
# pinned with sha256 hashes of their CPython 3.11 manylinux wheels in deploy/requirements.lock
# (regenerate: python .ci/lock_requirements.py) and installed by hash; the base image is pinned by
# the digest of its multi-arch index (linux/amd64 and linux/arm64). tests/unit/test_dockerfile.py
# checks all of it without a Docker engine.
ARG PYTHON_IMAGE=python:3.11.9-slim-bookworm@sha256:8fb099199b9f2d70342674bd9dbccd3ed03a258f26bbd1d556822c6dfc60c317

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY deploy/requirements.lock ./
RUN pip install --no-cache-dir --no-compile --require-hashes --only-binary=:all: --prefix=/install -r requirements.lock
COPY pyproject.toml README.md ./
COPY heteroscale ./heteroscale
RUN pip install --no-cache-dir --no-compile --no-deps --prefix=/install . \
    # The bundled traces serve the offline tools only.
    && rm -rf /install/lib/python3.11/site-packages/heteroscale/data \
    # Bytecode now, since the read-only root cannot cache it at run time; but none for the kubernetes
    # client's asyncio twin, which nothing imports (kopf talks to the API server with aiohttp): 27 MB.
    && python -m compileall -q -j 0 -x '/kubernetes/aio/' /install/lib/python3.11/site-packages

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 heteroscale && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin heteroscale
COPY --from=build /install /usr/local
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["heteroscale"]
CMD ["run", "--all-namespaces"]
