#!/usr/bin/env bash
# Regenerates the screenshots of the web UI in docs/ui/ (never edited by hand):
#   scripts/ui-screenshots.sh
#
# Runs the browser suite (tests/ui, through tests/compat/ui.rs: the real binary, moto, Debian's
# Chromium) with KEYMINT_UI_SCREENSHOTS=docs/ui, so every page the suite checks is saved there
# as <name>.png at 1280 px wide (and the overview as overview-narrow.png at 360 px). Installs
# what it needs the way scripts/test.sh does; needs no PostgreSQL.
set -euo pipefail
exec </dev/null

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

step "moto[server] and Playwright in .venv"
ensure_venv
pip_install_stamped tests/requirements.txt .venv/keymint-requirements.txt moto_server
export MOTO_SERVER="$repo/.venv/bin/moto_server"

step "Chromium and axe-core in tests/ui"
ensure_node
ensure_chromium
npm_ci_stamped tests/ui
export KEYMINT_UI_CHROMIUM=/usr/bin/chromium

step "cargo build"
cargo build --quiet --workspace --bins
# As in scripts/test.sh: the suite runs this binary rather than building one while moto waits.
export KEYMINT_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/keymint"

step "browser suite, screenshots to docs/ui"
# Pages the suite no longer visits must not linger.
rm -f docs/ui/*.png
mkdir -p docs/ui
# --workspace, as scripts/test.sh: the same feature set as the build above, so nothing rebuilds.
KEYMINT_UI_SCREENSHOTS="$repo/docs/ui" cargo test --workspace --test compat -- --exact ui::browser_suite
ls docs/ui
