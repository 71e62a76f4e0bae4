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
# with-wine.sh starts a persistent wineserver, boots the services once with
# their output on /dev/null, runs the command, then stops the server.
set -euo pipefail
exec "$(dirname "$0")/with-wine.sh" env GOOS=windows go test -exec wine "$@"
