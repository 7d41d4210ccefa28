#!/usr/bin/env bash
# Build the Consul agent used by the discovery/consul tests and cache it under
# .cache/bin/consul-<version>. Consul has no Debian package and
# `go install github.com/hashicorp/consul@vX` fails (consul's go.mod carries
# replace directives), so it is built from a throwaway module that pins consul,
# a consul/api new enough for consul's command/acl, and consul's own go-msgpack
# excludes. Idempotent: does nothing when the binary is already cached.
# Cold build: about 4 minutes and 3.2 GB of memory.
set -euo pipefail

CONSUL_VERSION="${CONSUL_VERSION:-1.22.7}"
CONSUL_API_VERSION="${CONSUL_API_VERSION:-1.34.1}"
GO="${GO:-go}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${root}/.cache/bin/consul-${CONSUL_VERSION}"

if [ -x "${out}" ]; then
	echo "consul ${CONSUL_VERSION}: cached at ${out}"
	exit 0
fi

mkdir -p "$(dirname "${out}")"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

cat >"${work}/go.mod" <<MOD
module hxds.invalid/consulbuild

go 1.25

require (
	github.com/hashicorp/consul v${CONSUL_VERSION}
	github.com/hashicorp/consul/api v${CONSUL_API_VERSION}
)

exclude (
	github.com/hashicorp/go-msgpack v1.1.5
	github.com/hashicorp/go-msgpack v1.1.6
)
MOD
cat >"${work}/tools.go" <<'SRC'
//go:build tools

package consulbuild

import _ "github.com/hashicorp/consul"
SRC

echo "consul ${CONSUL_VERSION}: building (cold: ~4 min, ~3.2 GB peak)"
cd "${work}"
# -mod=mod lets go resolve and record the full module graph in the throwaway go.sum.
"${GO}" mod download github.com/hashicorp/consul@v"${CONSUL_VERSION}" >/dev/null
GOFLAGS=-mod=mod "${GO}" build -trimpath -ldflags='-s -w' -o "${out}.tmp" github.com/hashicorp/consul
mv "${out}.tmp" "${out}"
echo "consul ${CONSUL_VERSION}: built ${out}"
