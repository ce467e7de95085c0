#!/bin/sh
# plan-features.sh - the `command` of 02-planning/03-prioritize in the example graph.
#
# Writes $TASK_OUTPUT_DIR/feature-list.json and generates one implementation
# task per feature at tasks/03-implementation/generated/<NN>-<feature>.md.
# The orchestrator picks those files up while it runs, so each one is written
# to a temporary name that does not end in .md and then renamed into place:
# a half-written task file is never visible.
#
# Environment: TASK_ID, TASK_FILE, TASK_OUTPUT_DIR (set by the orchestrator).
#   TASKS_DIR=DIR            where to generate tasks (default: the tasks/ folder
#                            that holds TASK_FILE, else tasks/ next to scripts/)
#   EXAMPLE_AGENT_SLEEP=N    sleep N seconds instead of 1 (0 = no sleep)
#
# POSIX sh only (works with dash).

set -eu

log() { printf '[plan-features] %s\n' "$*"; }
die() { printf '[plan-features] error: %s\n' "$*" >&2; exit 2; }

[ -n "${TASK_OUTPUT_DIR:-}" ] || die "TASK_OUTPUT_DIR is not set"
TASK_ID=${TASK_ID:-02-planning/03-prioritize}

# Where the tasks live: TASK_FILE is <tasks dir>/<task id>.md.
if [ -z "${TASKS_DIR:-}" ]; then
    if [ -n "${TASK_FILE:-}" ] && [ "${TASK_FILE%/"$TASK_ID".md}" != "$TASK_FILE" ]; then
        TASKS_DIR=${TASK_FILE%/"$TASK_ID".md}
    else
        TASKS_DIR=$(cd "$(dirname "$0")/.." && pwd)/tasks
    fi
fi
[ -d "$TASKS_DIR" ] || die "tasks directory not found: $TASKS_DIR"
gen_dir=$TASKS_DIR/03-implementation/generated

log "task $TASK_ID: prioritizing features"
for input in 02-planning/01-design-architecture/architecture.md \
             02-planning/02-estimate-effort/estimates.json; do
    if [ -n "${WORKSPACE:-}" ] && [ -f "$WORKSPACE/outputs/$input" ]; then
        log "read input $input"
    else
        log "input $input not found (fine when run by hand)"
    fi
done

seconds=${EXAMPLE_AGENT_SLEEP:-1}
case $seconds in
    '' | *[!0-9.]* | .* | *.*.* ) die "EXAMPLE_AGENT_SLEEP must be a number of seconds, got '$seconds'" ;;
esac
[ "$seconds" = 0 ] || sleep "$seconds"

# The chosen features, highest priority first: name|summary|conformance tests fixed.
features='decorators|Parse legacy and TC39 decorators on classes, members and parameters|412
generics|Generic type parameters with defaults, constraints and const modifiers|388
enums|Regular, const and declare enums, including computed members|141
namespaces|Namespaces and internal modules, including nested dotted names|97
jsx|JSX and TSX elements, fragments and attributes in .tsx files|265'

# --- feature-list.json --------------------------------------------------------

mkdir -p "$TASK_OUTPUT_DIR"
list=$TASK_OUTPUT_DIR/feature-list.json
{
    printf '{\n  "generated_by": "scripts/plan-features.sh",\n  "features": [\n'
    n=0
    while IFS='|' read -r name summary fixes; do
        n=$((n + 1))
        [ "$n" = 1 ] || printf ',\n'
        printf '    {"priority": %d, "name": "%s", "summary": "%s", "conformance_tests_fixed": %s, "task": "03-implementation/generated/%02d-%s"}' \
            "$n" "$name" "$summary" "$fixes" "$n" "$name"
    done <<EOF
$features
EOF
    printf '\n  ]\n}\n'
} > "$list.tmp"
mv "$list.tmp" "$list"
log "wrote $list"

# --- one task per feature -----------------------------------------------------

tmp=
trap '[ -z "$tmp" ] || rm -f "$tmp"' EXIT
mkdir -p "$gen_dir"
n=0
while IFS='|' read -r name summary fixes; do
    n=$((n + 1))
    id=$(printf '%02d-%s' "$n" "$name")
    final=$gen_dir/$id.md
    tmp=$gen_dir/.$id.md.tmp.$$          # not *.md: the orchestrator ignores it
    cat > "$tmp" <<EOF
---
title: "Implement $name"
description: "$summary"
dependencies:
  - 02-planning/03-prioritize
inputs:
  - 02-planning/03-prioritize/feature-list.json
outputs:
  - patch.diff
  - notes.md
---
Implement parsing of $name in the TypeScript parser. Scope: $summary.
Read the "$name" entry of the feature list in this task's inputs and follow the
architecture design (workspace/outputs/02-planning/01-design-architecture/architecture.md).
About $fixes conformance tests should start passing; add the parser unit tests
that cover the new syntax, and keep every existing test passing.
Save the complete change as \$TASK_OUTPUT_DIR/patch.diff and summarize it, with the
newly passing conformance tests, in \$TASK_OUTPUT_DIR/notes.md.
EOF
    if [ -f "$final" ] && cmp -s "$tmp" "$final"; then
        rm -f "$tmp"                     # unchanged (e.g. a retry): leave it alone
        log "unchanged $final"
    else
        mv "$tmp" "$final"
        log "generated $final"
    fi
done <<EOF
$features
EOF

log "done: $n implementation tasks in $gen_dir"
exit 0
