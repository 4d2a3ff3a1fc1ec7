#!/usr/bin/env bash
# Entrypoint of the Streams Lab image (PID 1 is tini, which forwards `docker stop`'s SIGTERM here
# and reaps the detached servers).
#
#   (no command) or `lab`   what `make lab` does, in the foreground: Redis + Kafka + JupyterLab by
#                           the course supervisor, JupyterLab serving the learner's workspace with
#                           the course's settings. `docker stop` stops all three cleanly, exit 0.
#   any other command       start Redis + Kafka, run the command, stop Redis + Kafka; exit with the
#                           command's status (0 when it was ended by `docker stop`).
#
# JupyterLab listens on all of the container's interfaces (Docker's port mapping cannot reach
# 127.0.0.1 inside it); docker-compose.yml publishes it on the host's 127.0.0.1 only, and a token is
# always required (JUPYTER_TOKEN, or a random one kept in .course/jupyter/token on the volume).
set -uo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

course="${COURSE_DIR:-$PWD/.course}"
mkdir -p "${course}" 2>/dev/null
if ! { : >"${course}/.write-test"; } 2>/dev/null; then
  echo "error: ${course} is not writable by $(id -un) (uid $(id -u)); it belongs to uid" \
       "$(stat -c %u "${course}" 2>/dev/null || echo '?'). A named volume keeps the image's owner;" \
       "a host folder mounted there must be writable by uid $(id -u) (e.g. sudo chown -R $(id -u) <folder>)." >&2
  exit 1
fi
rm -f "${course}/.write-test"

if [[ $# -eq 0 || "$1" == "lab" ]]; then
  export COURSE_LAB_HOST="${COURSE_LAB_HOST:-0.0.0.0}"
  export COURSE_LAB_PUBLIC_PORT="${COURSE_LAB_PUBLIC_PORT:-${LAB_PORT:-}}"
  exec python -m helpers.services up --lab --foreground
fi

python -m helpers.services up \
  || echo "warning: the course services did not all start; see \`python -m helpers.services logs\`." >&2

"$@" &
child=$!
stopping=0
trap 'stopping=1; kill -TERM "${child}" 2>/dev/null' TERM INT HUP
status=0
while true; do
  wait "${child}"
  status=$?
  kill -0 "${child}" 2>/dev/null || break   # a trapped signal interrupted `wait`: wait again
done
trap '' TERM INT HUP
python -m helpers.services down
if [[ "${stopping}" == 1 ]]; then
  exit 0
fi
exit "${status}"
