#!/bin/sh
# Stops what scripts/slurm-start.sh started, by the pids it recorded.
set -u
STATE_DIR=${XTASK_SLURM_STATE:-/tmp/xtask-slurm}
PIDS=$STATE_DIR/pids
[ -f "$PIDS" ] || exit 0
while read -r pid; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && printf 'slurm-stop: stopped %s\n' "$pid"
done < "$PIDS"
rm -f "$PIDS"
