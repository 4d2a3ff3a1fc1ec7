#!/usr/bin/env bash
# Dev Container / Codespaces postCreateCommand (.devcontainer/devcontainer.json). Runs once, as
# `learner`, in the repository mounted at /workspaces/<repo>:
#   1. `make setup`: .venv in the workspace, as on bare metal (a workspace the user cannot write
#      fails here with one sentence naming the folder's owner);
#   2. the Kafka broker jars: a copy of the image's own (resolved at build time from the same
#      services/kafka/pom.xml) instead of a second Maven download; with another pom.xml, the first
#      `make services-up` resolves them with Maven into ~/.m2 as usual.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
make setup
image=/opt/streamslab
if [[ ! -e .course/kafka/libs/.pom.sha256 && -d "${image}/.course/kafka/libs" ]] \
   && cmp -s services/kafka/pom.xml "${image}/services/kafka/pom.xml"; then
  mkdir -p .course/kafka
  cp -a "${image}/.course/kafka/libs" .course/kafka/
  echo "Kafka jars: copied from the image (${image}/.course/kafka/libs)"
fi
