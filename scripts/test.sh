#!/usr/bin/env bash
# Runs the whole test suite: set-up (idempotent), lint, type check, then pytest (slow tests included).
# Extra arguments go to pytest, e.g. `scripts/test.sh -k tiling`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
./scripts/setup.sh
py=.venv/bin/python
echo "== ruff"
"$py" -m ruff check mmrealsr_video vs_plugin training tests benchmarks examples
echo "== mypy"
"$py" -m mypy
echo "== pytest"
exec "$py" -m pytest -q "$@"
