# syntax=docker/dockerfile:1
# Slim, non-root image of `heteroscale run`. The runtime dependencies are pinned with sha256 hashes
# of their CPython 3.11 manylinux wheels in deploy/requirements.lock (regenerate: python
# .ci/lock_requirements.py) and installed by hash; tests/unit/test_dockerfile.py checks it.
FROM python:3.11.9-slim-bookworm AS build
WORKDIR /src
COPY deploy/requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: --prefix=/install -r requirements.lock
COPY pyproject.toml README.md ./
COPY heteroscale ./heteroscale
RUN pip install --no-cache-dir --no-deps --prefix=/install .

FROM python:3.11.9-slim-bookworm
RUN groupadd --gid 10001 heteroscale && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin heteroscale
COPY --from=build /install /usr/local
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["heteroscale"]
CMD ["run", "--all-namespaces"]
