# syntax=docker/dockerfile:1
# Streams Lab: one image with JupyterLab, redis-server, a Java 17 runtime and the Kafka broker jars.
# Its main process is the same supervisor as bare metal, in the foreground (`docker/entrypoint.sh`):
# Redis and Kafka on 127.0.0.1 inside the container, JupyterLab serving the learner's workspace
# with the course's settings, exactly as `make lab`; only JupyterLab (8888) is published, by
# docker-compose.yml, on the host's 127.0.0.1. How this file was checked: README, "Other ways in".
FROM python:3.11-slim-bookworm

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONUNBUFFERED=1

# man1 must exist for openjdk's postinst on slim images. git: for Dev Containers / Codespaces.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      redis-server openjdk-17-jre-headless maven make tini git \
 && rm -rf /var/lib/apt/lists/*

# Non-root learner. The supervisor needs write access to /opt/streamslab (.course, workspace/);
# ~/.m2 is the learner's own (Maven's local repository when a Dev Container resolves the jars).
ARG LEARNER_UID=1000
RUN useradd --create-home --uid "${LEARNER_UID}" --shell /bin/bash learner \
 && mkdir -p /opt/streamslab/.course /opt/streamslab/workspace /home/learner/.m2 \
 && chown -R learner:learner /opt/streamslab /home/learner
WORKDIR /opt/streamslab

# 1) Python dependencies: rebuilt only when pyproject.toml changes. The package is installed
#    editable (helpers.config finds services/ and .course/ next to helpers/), so a stub package
#    is enough here; the real helpers/ is copied over it below.
COPY --chown=learner:learner pyproject.toml ./
RUN mkdir -p helpers && touch helpers/__init__.py README.md \
 && pip install -e ".[dev]" \
 && chown -R learner:learner /opt/streamslab

# 2) Kafka broker jars, resolved by the supervisor's own code into .course/kafka/libs. Maven's
#    repository is a BuildKit cache mount outside the learner's home (so changing helpers/ does not
#    download them again, and ~/.m2 stays the learner's own); this step runs as root (a cache mount
#    belongs to root unless given a uid) and hands the jars to the learner.
#    A fresh named volume on .course is filled from this directory on first start.
COPY --chown=learner:learner services/ services/
COPY --chown=learner:learner helpers/ helpers/
RUN --mount=type=cache,target=/var/cache/streamslab-m2 \
    MAVEN_OPTS="-Dmaven.repo.local=/var/cache/streamslab-m2" \
    python -c "from helpers.config import course_dir; from helpers.services.kafka_server import ensure_kafka_jars; ensure_kafka_jars(course_dir() / 'kafka' / 'libs')" \
 && test -n "$(ls .course/kafka/libs/kafka_2.13-*.jar)" \
 && chown -R learner:learner .course

# 3) Everything else (notebooks, tests, docs); .dockerignore keeps .course/.venv/.git/workspace out.
COPY --chown=learner:learner . .
USER learner

EXPOSE 8888
# bash explicitly: works even when a checkout lost the executable bit (e.g. on Windows)
ENTRYPOINT ["/usr/bin/tini", "--", "bash", "/opt/streamslab/docker/entrypoint.sh"]
# `lab` = `make lab` in the foreground; `docker stop` (SIGTERM) stops JupyterLab, Kafka and Redis
# cleanly and the container exits 0. Any other command runs with Redis + Kafka up, e.g.
# `docker run --rm streams-lab python -m pytest -q tests/test_nb02_lists.py`.
CMD ["lab"]
