#!/usr/bin/env bash
# Run a command with a persistent wineserver whose services were booted with
# their output on /dev/null (gotest.sh says why), then stop the server.
#   .ci/wine/with-wine.sh wine /tmp/stress.exe -duration 3s
set -euo pipefail

export WINEPREFIX="${WINEPREFIX:-$HOME/.wine}"
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"

[ -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ] || {
  echo "no ProcessPrng shim in $WINEPREFIX: run .ci/wine/setup.sh first" >&2
  exit 1
}

wineserver -p </dev/null >/dev/null 2>&1
stop() { wineserver -k 2>/dev/null || true; wineserver -w 2>/dev/null || true; }
trap stop EXIT
wine cmd /c exit 0 </dev/null >/dev/null 2>&1

"$@"
