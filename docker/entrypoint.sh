#!/usr/bin/env bash
# Entrypoint of the Streams Lab image (PID 1 is tini, which reaps the detached servers).
#  1. start Redis + Kafka with the course supervisor, exactly as on bare metal (127.0.0.1 only);
#  2. give JupyterLab a token that survives restarts (kept in .course/jupyter/token, on the
#     named volume) unless JUPYTER_TOKEN is set, and print the URL to open;
#  3. run the command (JupyterLab by default) and, when the container is stopped, stop Redis and
#     Kafka cleanly. A bare `exec "$@"` would leave them to be SIGKILLed by `docker stop`, because
#     the supervisor runs them in their own sessions, out of reach of tini's signal forwarding.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

if ! python -m helpers.services up; then
  echo "warning: the course services did not all start; see \`python -m helpers.services logs\`." >&2
  echo "warning: JupyterLab starts anyway; the notebooks' setup cells will say what is missing." >&2
fi

if [[ "${1:-}" == "jupyter" ]]; then
  if [[ -z "${JUPYTER_TOKEN:-}" ]]; then
    JUPYTER_TOKEN="$(python -c 'from helpers.services import get_lab; print(get_lab().jupyter.token)')"
    export JUPYTER_TOKEN
  fi
  echo "Streams Lab is starting: open http://127.0.0.1:${LAB_PORT:-8888}/lab?token=${JUPYTER_TOKEN}"
fi

"$@" &
child=$!
trap 'kill -TERM "${child}" 2>/dev/null || true' TERM INT HUP
status=0
wait "${child}" || status=$?
# A trapped signal interrupts `wait`: wait again until the command has really exited.
while kill -0 "${child}" 2>/dev/null; do
  wait "${child}" || status=$?
done
python -m helpers.services down || true
exit "${status}"
