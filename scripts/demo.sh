#!/usr/bin/env bash
# Sets casedesk up and runs the main job on the embedded default: the sample reports in
# examples/ are delivered to a local Maildir (var/mailbox), `casedesk run` turns them into cases
# in SQLite (var/casedesk.db) and writes the confirmations to a folder (var/outbox).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PREFECT_HOME="${PREFECT_HOME:-$PWD/var/prefect}"
casedesk=.venv/bin/casedesk

echo "== delivering the sample reports in examples/ to the local mailbox"
$casedesk mailbox add examples/*.eml
echo "== casedesk run"
$casedesk run
echo "== the cases"
$casedesk cases list
first=$($casedesk cases list | awk 'NR==3 {print $1}')
if [ -n "$first" ]; then
    echo "== case $first"
    $casedesk cases show "$first"
fi
echo "== confirmations written to var/outbox/"
ls -1 var/outbox/
