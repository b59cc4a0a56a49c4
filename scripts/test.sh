#!/usr/bin/env bash
# Sets up everything the tests need on a fresh Debian machine, then runs lint and the tests.
# With CASEDESK_REQUIRE_SERVICES=1 (CI) a missing server fails its tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}

# Dovecot: the IMAP tests talk to a real one, started by a fixture with its own config.
if ! command -v dovecot >/dev/null && [ ! -x /usr/sbin/dovecot ]; then
    echo "== installing dovecot-imapd (apt-get)"
    if ! { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; }; then
        echo "could not install dovecot-imapd (no root or no apt-get): IMAP tests will skip" >&2
    fi
fi

# PostgreSQL: the store tests run against it too; start the machine's cluster if it is down.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
        as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    fi
fi

bash scripts/setup.sh
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
