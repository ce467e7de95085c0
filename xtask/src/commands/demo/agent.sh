#!/bin/sh
# demo-agent.sh - a stand-in coding agent for `cargo xtask demo`: it edits
# one file of the repository it runs in (its git worktree), then commits the
# change, or leaves it uncommitted for the orchestrator to commit.
#
# Usage: sh demo-agent.sh FILE TEXT SECONDS commit|leave [WAIT_FOR]
#   FILE      the file to write, relative to the worktree
#   TEXT      its new first line
#   SECONDS   how long the "agent" thinks first
#   commit    commit the change; leave: leave it uncommitted
#   WAIT_FOR  optional: first wait until the integration branch has a commit
#             whose subject contains this text (to make a conflict certain)
#
# Environment (set by the orchestrator): TASK_ID, TASK_WORKTREE,
# TASK_BRANCH, TASK_INTEGRATION_BRANCH, TASK_PORT, TASK_ATTEMPT and, on a
# retry, TASK_PREVIOUS_ERROR. A retry (of a merge that conflicted, say)
# starts over from the integration branch, as an agent told what failed
# would: its work is then made on top of what was merged meanwhile.

set -eu

file=$1 text=$2 seconds=$3 mode=$4 wait_for=${5:-}

echo "[demo-agent] $TASK_ID in $TASK_WORKTREE on $TASK_BRANCH (port $TASK_PORT)"
if [ "${TASK_ATTEMPT:-1}" -gt 1 ]; then
    echo "[demo-agent] attempt $TASK_ATTEMPT, after: ${TASK_PREVIOUS_ERROR:-}"
    echo "[demo-agent] starting over from $TASK_INTEGRATION_BRANCH"
    git reset -q --hard "$TASK_INTEGRATION_BRANCH"
fi
if [ -n "$wait_for" ]; then
    until git log --format=%s "$TASK_INTEGRATION_BRANCH" | grep -q "$wait_for"; do
        sleep 0.1
    done
fi
sleep "$seconds"
mkdir -p "$(dirname "$file")"
{
    echo "$text"
    if [ -f "$file" ]; then tail -n +2 "$file"; fi
} > "$file.new"
mv "$file.new" "$file"
echo "[demo-agent] wrote $file"
if [ "$mode" = commit ]; then
    git add "$file"
    git commit -q -m "$TASK_ID: $text"
    echo "[demo-agent] committed"
else
    echo "[demo-agent] left the change uncommitted"
fi
