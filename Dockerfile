# One image for every role in docker-compose.yml: the MLflow tracking server, the trainer
# (`stackcast train`) and the model server (`stackcast serve`, the default command).
#
#   docker build -t stackcast:cpu .                                 # CPU PyTorch (default)
#   docker build -t stackcast:cuda --build-arg TORCH_VARIANT=cu130 .  # a CUDA build of PyTorch
#
# TORCH_VARIANT is a folder of PyTorch's wheel index (cpu, cu126, cu128, cu130, ...: pick one
# that lists torch 2.13 and that your driver supports), or set TORCH_INDEX_URL to another index.
# An empty TORCH_INDEX_URL leaves the choice to pip's own configuration in the base image (its
# index, PIP_FIND_LINKS): for air-gapped sites whose base image carries a mirror or the wheels.
# BASE_IMAGE swaps the Python 3.11 base (a mirror's copy of python:3.11-slim, say); it must have
# `python` and `pip` on PATH, installing into a writable environment.
# No secrets go into the image: the API key and the database password come from the environment.
# Needs BuildKit (any current Docker; `docker compose build` uses it): pip's cache is a cache mount,
# kept by the builder between builds and never part of a layer.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_VERSION=2.13.*
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app

# PyTorch first, from its own index: the project's `torch` requirement is then already met, and
# an unconstrained `torch` from the default index would be a multi-GB CUDA build.
# Its C++ test programs, test suite and headers (for compiling extensions; nothing here compiles
# any) go in the same layer: ~190 MB that no role of the image runs.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install "torch==${TORCH_VERSION}" ${TORCH_INDEX_URL:+--index-url "${TORCH_INDEX_URL}"} \
 && torch=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/torch \
 && rm -rf "$torch/test" "$torch/include" "$torch"/bin/test_* "$torch"/bin/*Test

# The dependencies (with the `postgres` extra) in their own layer, read from pyproject.toml, so a
# code change (or a README change) does not reinstall them. The test suites of the largest ones
# go in the same layer (~140 MB): the image runs none of them.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt \
 && site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
 && for package in pandas numpy scipy sklearn sympy networkx matplotlib pyarrow; do \
      find "$site/$package" -type d -name tests -prune -exec rm -rf {} +; \
    done

# The code, the default config and the bundled M4 Hourly data. The install is editable on
# purpose: training/m4.py and training/config.py find data/m4-hourly/ and configs/ beside the
# packages, so the packages must be imported from /app, not from a copy in site-packages.
COPY README.md ./
COPY models/ models/
COPY training/ training/
COPY service/ service/
COPY stackcast/ stackcast/
COPY configs/ configs/
COPY data/ data/
RUN pip install --no-deps -e . \
 && python -m compileall -q models training service stackcast \
 && python -c "from stackcast.training.m4 import load_m4; \
assert [len(load_m4(s).ids) for s in ('hourly', 'weekly')] == [414, 359]"

# An unprivileged user. The code stays root-owned (read-only to it); it may write only its home
# (matplotlib's and torch's caches), /app/checkpoints (the trainer's best checkpoints) and
# /mlartifacts (the tracking server's artifact store: a named volume takes this owner).
RUN useradd --create-home --uid 10001 --user-group stackcast \
 && mkdir -p /app/checkpoints /mlartifacts \
 && chown stackcast:stackcast /app/checkpoints /mlartifacts
USER stackcast
# MLflow asks GitPython for the source commit of each run; the image has no git and /app is no
# repository, so its multi-line warning on every run is noise.
ENV GIT_PYTHON_REFRESH=quiet

# 8000: stackcast serve (STACKCAST_PORT); 5000: mlflow server.
EXPOSE 8000 5000

# For `stackcast serve`: /health answers 503 while the model loads and warms, then 200. The
# tracking server's and the trainer's containers set their own check (see docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('STACKCAST_PORT', '8000'), timeout=4)"]

CMD ["stackcast", "serve"]
