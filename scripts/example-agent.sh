#!/bin/sh
# example-agent.sh - a stand-in for an AI agent, used by the example task graph.
#
# Usage: sh scripts/example-agent.sh TASK_FILE
#
# It reads the task file, logs what a real agent would be doing, sleeps a
# moment, then writes a small placeholder file for every entry of the task's
# `outputs:` frontmatter list into $TASK_OUTPUT_DIR. A glob output such as
# `*.json` gets one example file matching it (`result.json`). Its last line on
# stdout is a result shaped like `claude -p --output-format json`'s, with
# stand-in figures (a cost no one paid).
#
# Environment (set by the orchestrator):
#   TASK_ID, TASK_FILE, TASK_PHASE, TASK_OUTPUT_DIR, TASK_LOG, AGENT_ID, WORKSPACE,
#   TASK_PROMPT_FILE (the rendered prompt, when the config has a template)
# Knobs for trying the orchestrator out:
#   EXAMPLE_AGENT_SLEEP=N     sleep N seconds instead of 1 or 2 (0 = no sleep)
#   EXAMPLE_AGENT_FAIL=PAT    exit 1 without writing outputs when TASK_ID
#                             matches the shell pattern PAT (e.g. '04-*/*')
#
# POSIX sh only (works with dash); needs nothing beyond awk, sed and mkdir.

set -eu

log() { printf '[example-agent] %s\n' "$*"; }
die() { printf '[example-agent] error: %s\n' "$*" >&2; exit 2; }

task_file=${1:-${TASK_FILE:-}}
[ -n "$task_file" ] || die "usage: $0 TASK_FILE"
[ -f "$task_file" ] || die "task file not found: $task_file"

if [ -z "${TASK_ID:-}" ]; then
    # Not started by the orchestrator: derive an id from the file name.
    TASK_ID=$(basename "$task_file" .md)
fi
[ -n "${TASK_OUTPUT_DIR:-}" ] || die "TASK_OUTPUT_DIR is not set"
mkdir -p "$TASK_OUTPUT_DIR"

# --- read the task file -------------------------------------------------------

# Frontmatter lines: between the opening `---` on line 1 and the next `---`
# (or `...`, which also ends a YAML document).
frontmatter() {
    awk '
        { sub(/\r$/, "") }
        NR == 1 { if ($0 !~ /^---[ \t]*$/) exit; next }
        /^(---|\.\.\.)[ \t]*$/ { exit }
        { print }
    ' "$task_file"
}

# The `outputs:` list, one entry per line. Handles the flow style
# `outputs: [a, "b"]`, the block style (`  - a` lines, which end at the next
# key) and a single scalar `outputs: a`. Quotes and `# comments` are removed.
list_outputs() {
    frontmatter | awk '
        function emit(s) {
            sub(/[ \t]+#.*$/, "", s)
            gsub(/^[ \t]+|[ \t]+$/, "", s)
            if (s ~ /^".*"$/ || s ~ /^\047.*\047$/) s = substr(s, 2, length(s) - 2)
            if (s != "") print s
        }
        inlist {
            if ($0 ~ /^[ \t]*-([ \t]|$)/) { s = $0; sub(/^[ \t]*-[ \t]*/, "", s); emit(s); next }
            if ($0 ~ /^[ \t]*(#.*)?$/) next          # blank line or comment
            inlist = 0                               # next key: list is over
        }
        /^outputs[ \t]*:/ {
            rest = $0
            sub(/^outputs[ \t]*:[ \t]*/, "", rest)
            sub(/^#.*$/, "", rest)
            if (rest ~ /^\[/) {
                sub(/^\[/, "", rest); sub(/\][ \t]*(#.*)?$/, "", rest)
                n = split(rest, items, ",")
                for (i = 1; i <= n; i++) emit(items[i])
            } else if (rest ~ /^[ \t]*$/) {
                inlist = 1
            } else {
                emit(rest)
            }
        }
    '
}

# Value of a simple `key: value` frontmatter line, without quotes.
field() {
    frontmatter | awk -v key="$1" '
        index($0, key ":") == 1 {
            v = substr($0, length(key) + 2)
            gsub(/^[ \t]+|[ \t]+$/, "", v)
            if (v ~ /^".*"$/ || v ~ /^\047.*\047$/) v = substr(v, 2, length(v) - 2)
            print v; exit
        }
    '
}

# First non-empty line of the prompt (the body after the frontmatter).
prompt_first_line() {
    awk '
        { sub(/\r$/, "") }
        NR == 1 && $0 ~ /^---[ \t]*$/ { infm = 1; next }
        infm && /^(---|\.\.\.)[ \t]*$/ { infm = 0; next }
        infm { next }
        /[^ \t]/ { sub(/^[# \t]+/, ""); print; exit }
    ' "$task_file"
}

title=$(field title)
[ -n "$title" ] || title=$TASK_ID
outputs=$(list_outputs)

log "agent ${AGENT_ID:-?} picked up task $TASK_ID (phase ${TASK_PHASE:-?})"
log "title: $title"
if [ -n "${TASK_PROMPT_FILE:-}" ] && [ -f "$TASK_PROMPT_FILE" ]; then
    log "reading prompt $TASK_PROMPT_FILE ($(wc -l < "$TASK_PROMPT_FILE") lines): $(sed -n '/[^ \t]/{s/^[# \t]*//;p;q;}' "$TASK_PROMPT_FILE")"
else
    log "reading prompt: $(prompt_first_line)"
fi

# --- "work" -------------------------------------------------------------------

# 1 or 2 seconds, deterministically from the length of the task id.
seconds=$(( 1 + ${#TASK_ID} % 2 ))
if [ -n "${EXAMPLE_AGENT_SLEEP:-}" ]; then
    case $EXAMPLE_AGENT_SLEEP in
        *[!0-9.]* | .* | *.*.* ) die "EXAMPLE_AGENT_SLEEP must be a number of seconds, got '$EXAMPLE_AGENT_SLEEP'" ;;
    esac
    seconds=$EXAMPLE_AGENT_SLEEP
fi
log "working for ${seconds}s ..."
[ "$seconds" = 0 ] || sleep "$seconds"

if [ -n "${EXAMPLE_AGENT_FAIL:-}" ]; then
    # Deliberately unquoted: EXAMPLE_AGENT_FAIL is a shell pattern.
    # shellcheck disable=SC2254
    case $TASK_ID in
        $EXAMPLE_AGENT_FAIL)
            log "simulated failure (EXAMPLE_AGENT_FAIL=$EXAMPLE_AGENT_FAIL)" >&2
            exit 1 ;;
    esac
fi

# --- outputs ------------------------------------------------------------------

# JSON string contents: escape backslashes and double quotes.
json_str() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)

write_output() {    # $1 = file name relative to $TASK_OUTPUT_DIR
    path=$TASK_OUTPUT_DIR/$1
    case $1 in */*) mkdir -p "$(dirname "$path")" ;; esac
    case $1 in
        *.json)
            cat > "$path" <<EOF
{
  "task_id": "$(json_str "$TASK_ID")",
  "title": "$(json_str "$title")",
  "generated_by": "example-agent",
  "agent_id": "$(json_str "${AGENT_ID:-}")",
  "generated_at": "$now",
  "summary": "Placeholder result: a real agent would write its findings here.",
  "items": []
}
EOF
            ;;
        *.md)
            cat > "$path" <<EOF
# $title

_Task \`$TASK_ID\`, written by the example agent at $now._

This is a placeholder. A real agent would write its report here, following
the prompt in \`$task_file\`.
EOF
            ;;
        *.diff | *.patch)
            cat > "$path" <<EOF
--- a/PLACEHOLDER
+++ b/PLACEHOLDER
@@ -0,0 +1 @@
+example-agent change for $TASK_ID
EOF
            ;;
        *)
            printf 'example-agent output for %s (%s)\n' "$TASK_ID" "$now" > "$path"
            ;;
    esac
    log "wrote $path"
}

if [ -z "$outputs" ]; then
    log "task declares no outputs"
fi
while IFS= read -r out; do
    [ -n "$out" ] || continue
    case $out in
        /* | ../* | */../* | .. | */..)
            log "skipping output outside the output directory: $out" >&2
            continue ;;
    esac
    # A glob gets one example file that matches it: *.json -> result.json.
    name=$(printf '%s\n' "$out" | sed 's/\*/result/g; s/?/x/g')
    write_output "$name"
done <<EOF
$outputs
EOF

log "done"

# --- result -------------------------------------------------------------------

# The last line on stdout is the result object `claude -p --output-format json`
# prints (see xtask/tests/fixtures/agents/claude/success.json), so that the
# orchestrator, with `agent.result: claude-json`, reads a verdict, a session and
# a cost from it as from the real CLI. The figures are stand-ins, made up from
# the task id's length: no model was called and nothing was spent.
n=${#TASK_ID}
input_tokens=$(( 1000 + n * 37 ))
output_tokens=$(( 200 + n * 11 ))
# $3 per million tokens in, $15 out, as for Sonnet.
cost=$(awk -v i="$input_tokens" -v o="$output_tokens" 'BEGIN { printf "%.6f", (i * 3 + o * 15) / 1000000 }')
session=$(printf '%08x-0000-4000-8000-%012x' "$n" "$(( n * 7919 ))")
printf '{"type":"result","subtype":"success","is_error":false,"duration_ms":%d,"num_turns":%d,"result":"stand-in result for %s: no model was called","session_id":"%s","total_cost_usd":%s,"usage":{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":%d}}\n' \
    "$(( seconds * 1000 ))" "$(( 1 + n % 5 ))" "$(json_str "$TASK_ID")" "$session" "$cost" "$input_tokens" "$output_tokens"
exit 0
