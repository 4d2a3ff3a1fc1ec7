# syntax=docker/dockerfile:1
# Streams Lab: one image with JupyterLab, redis-server, a Java 17 runtime and the Kafka broker jars.
# The same supervisor as bare metal (`python -m helpers.services up`) runs Redis and Kafka on
# 127.0.0.1 inside the container; only JupyterLab (8888) is published, by docker-compose.yml.
FROM python:3.11-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONUNBUFFERED=1

# man1 must exist for openjdk's postinst on slim images.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      redis-server openjdk-17-jre-headless maven make tini \
 && rm -rf /var/lib/apt/lists/*

# Non-root learner: the supervisor only needs write access to /opt/streamslab (.course).
ARG LEARNER_UID=1000
RUN useradd --create-home --uid "${LEARNER_UID}" --shell /bin/bash learner \
 && mkdir -p /opt/streamslab/.course \
 && chown -R learner:learner /opt/streamslab
WORKDIR /opt/streamslab

# 1) Python dependencies: rebuilt only when pyproject.toml changes. The package is installed
#    editable (helpers.config finds services/ and .course/ next to helpers/), so a stub package
#    is enough here; the real helpers/ is copied over it below.
COPY --chown=learner:learner pyproject.toml ./
RUN mkdir -p helpers && touch helpers/__init__.py README.md \
 && pip install -e ".[dev]" \
 && chown -R learner:learner /opt/streamslab

# 2) Kafka broker jars, resolved by the supervisor's own code into .course/kafka/libs (the
#    Maven cache is a BuildKit cache mount, so changing helpers/ does not re-download them).
#    A fresh named volume on .course is filled from this directory on first start.
COPY --chown=learner:learner services/ services/
COPY --chown=learner:learner helpers/ helpers/
USER learner
RUN --mount=type=cache,target=/home/learner/.m2,uid=${LEARNER_UID} \
    python -c "from helpers.config import course_dir; from helpers.services.kafka_server import ensure_kafka_jars; ensure_kafka_jars(course_dir() / 'kafka' / 'libs')" \
 && test -n "$(ls .course/kafka/libs/kafka_2.13-*.jar)"

# 3) Everything else (notebooks, tests, docs); .dockerignore keeps .course/.venv/.git out.
COPY --chown=learner:learner . .

EXPOSE 8888
# bash explicitly: works even when a checkout lost the executable bit (e.g. on Windows)
ENTRYPOINT ["/usr/bin/tini", "--", "bash", "/opt/streamslab/docker/entrypoint.sh"]
# Inside the container JupyterLab must listen on 0.0.0.0 to be reachable through Docker's port
# mapping; docker-compose.yml publishes it on the host's 127.0.0.1 only. A token is still required
# (entrypoint.sh sets a persistent one, or use JUPYTER_TOKEN): binding 0.0.0.0 turns off Jupyter's
# Host-header check, so an empty token would let any local process or a DNS-rebinding web page
# drive the kernels.
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", \
     "--ServerApp.root_dir=/opt/streamslab", "--ServerApp.default_url=/lab/tree/notebooks"]
