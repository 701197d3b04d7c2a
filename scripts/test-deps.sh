#!/usr/bin/env bash
# Debian packages the end-to-end tests drive: nginx (reverse proxy), chromium (browser), openssl and
# curl (TLS), postgresql (throwaway clusters). Run by `npm test` (as `pretest`) so that
# `npm install && npm test` is the whole set-up on a fresh machine: installs what is missing when it
# can (root with apt-get), else says what to do.
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
# PostgreSQL tests run initdb/pg_ctl from Debian's /usr/lib/postgresql/<version>/bin (not on PATH).
command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "test-deps: the end-to-end tests need: ${missing[*]}" >&2
echo "test-deps: install them with: sudo apt-get install ${missing[*]}" >&2
exit 1
