#!/usr/bin/env bash
# Creates .venv (Python >= 3.11) and installs casedesk with its development tools into it.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "casedesk needs Python 3.11 or newer as '$python' (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
# pip's own notices about local package indexes of this machine are noise to a new user.
quiet_pip() {
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2> >(grep -v '^WARNING: Location' >&2)
}
quiet_pip --upgrade pip
quiet_pip -e '.[dev]'
