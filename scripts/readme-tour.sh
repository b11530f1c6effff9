#!/usr/bin/env bash
# readme-tour.sh follows README.md as a newcomer would: it starts `make run`
# in the background, runs the tour's commands (between the try-this markers)
# word for word, checks each answer, and stops the platform cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

log=.build/tour-run.log
mkdir -p .build
# A fresh data directory of its own, as on a fresh clone, without touching
# the developer's .dotdo; the CLI reads the same variable.
export DOTDO_DATA_DIR=.build/tour-data
rm -rf "$DOTDO_DATA_DIR"
setsid make run >"$log" 2>&1 &
pgid=$!
stop() {
  kill -INT -- "-$pgid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 -- "-$pgid" 2>/dev/null || return 0
    sleep 0.5
  done
  echo "tour: make run did not stop on SIGINT; killing it" >&2
  kill -KILL -- "-$pgid" 2>/dev/null || true
  return 1
}
trap 'stop || true' EXIT

for _ in $(seq 1 360); do
  grep -q "dotdo platform is running" "$log" && break
  kill -0 "$pgid" 2>/dev/null || { echo "tour: make run exited early:"; cat "$log"; exit 1; }
  sleep 0.5
done
grep -q "dotdo platform is running" "$log" || { echo "tour: make run did not become ready:"; cat "$log"; exit 1; }
grep -q "Created the bootstrap admin key" "$log" || { echo "tour: no bootstrap admin key was printed"; exit 1; }

# The tour's commands, word for word, and what each answer must contain.
mapfile -t cmds < <(sed -n '/<!-- try-this: begin -->/,/<!-- try-this: end -->/p' README.md | grep -v '^<!--' | grep -v '^```')
expect=(
  "gateway production version 1: live"
  '"greeting":"hello from gateway"'
  '"value":"hello"'
  '"value":"hello"'
  "scheduled() ran"
  '"ticks":[{'
  "gateway"
  "worker       db"
  "/api/db -> db on do, api.do"
  "audit trail intact"
)
[ "${#cmds[@]}" -eq "${#expect[@]}" ] || { echo "tour: README has ${#cmds[@]} commands, this script checks ${#expect[@]}"; exit 1; }
for i in "${!cmds[@]}"; do
  echo "\$ ${cmds[$i]}"
  out=$(bash -c "${cmds[$i]}" 2>&1) || { echo "$out"; echo "tour: command failed"; exit 1; }
  echo "$out"
  grep -qF -- "${expect[$i]}" <<<"$out" || { echo "tour: expected the answer to contain: ${expect[$i]}"; exit 1; }
done

trap - EXIT
stop
echo "tour: the README's commands work as written"
