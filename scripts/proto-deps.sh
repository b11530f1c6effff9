#!/usr/bin/env bash
# proto-deps.sh copies the two third-party proto sets into .build/proto-deps,
# where buf.yaml finds them: buf/validate from the protovalidate Go module and
# google/api from the npm package google-proto-files. Neither is committed;
# both versions are pinned (tools/go.mod and package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOVALIDATE_VERSION=v1.2.2
out=.build/proto-deps
rm -rf "$out"
mkdir -p "$out/buf/validate" "$out/google/api"

dir=$(cd tools && go mod download -json "github.com/bufbuild/protovalidate@${PROTOVALIDATE_VERSION}" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "proto-deps: cannot download github.com/bufbuild/protovalidate@${PROTOVALIDATE_VERSION}" >&2; exit 1; }
cp "$dir/proto/protovalidate/buf/validate/validate.proto" "$out/buf/validate/"

gpf=node_modules/google-proto-files/google/api
[ -f "$gpf/annotations.proto" ] || { echo "proto-deps: run 'npm ci' first (google-proto-files is missing)" >&2; exit 1; }
cp "$gpf/annotations.proto" "$gpf/http.proto" "$out/google/api/"
chmod -R u+w "$out"
