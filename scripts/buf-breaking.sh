#!/usr/bin/env bash
# buf-breaking.sh checks proto/ for breaking changes (WIRE_JSON) against the
# protos committed on main. The against side is laid out as a workspace of
# its own, with the same third-party protos, since those are not committed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=(go tool -modfile=tools/go.mod buf)

ref=${1:-main}
if ! git rev-parse --verify -q "$ref" >/dev/null ||
  ! git ls-tree -r --name-only "$ref" -- proto | grep -q '\.proto$'; then
  echo "buf breaking: $ref has no protos yet, skipped"
  exit 0
fi
against=.build/against
rm -rf "$against"
mkdir -p "$against/.build"
git archive "$ref" proto buf.yaml | tar -x -C "$against"
cp -r .build/proto-deps "$against/.build/"
echo "buf breaking against $ref"
"${BUF[@]}" breaking proto --against "$against/proto"
