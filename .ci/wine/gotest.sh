#!/usr/bin/env bash
# Run `go test` for GOOS=windows under Wine (after setup.sh), e.g.
#   .ci/wine/gotest.sh -count=1 ./seq/ ./pool/
# Arguments go to `go test` unchanged.
#
# Why not plain `GOOS=windows go test -exec wine`: the first Wine process to
# start also starts the wineserver and Wine's services (services.exe,
# winedevice.exe, explorer.exe ...), and those inherit that test binary's
# stdout. They live until the wineserver exits (3 s after the last Wine
# process), so go test waits for that pipe: each package costs ~3 s more, and
# if another package runs for over a minute meanwhile, go test gives up with
# "Test I/O incomplete 1m0s after exiting" and fails a package that passed.
# So: start a persistent wineserver, boot the services once with their output
# on /dev/null, run the tests, then stop the wineserver and wait for it.
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

GOOS=windows go test -exec wine "$@"
