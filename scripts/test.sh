#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run):
#   scripts/test.sh [extra cargo test args, e.g. a test name filter]
#
# It provides what the black-box tests need, then runs every check CI makes:
#   - PostgreSQL binaries (installed with apt-get when missing; needs root);
#   - moto[server], the AWS CLI, hvac and pytest pinned by tests/requirements.txt, in the
#     virtualenv .venv;
#   - Node.js and npm (Debian's, when missing) and node-vault pinned by
#     tests/compat/node-vault/package-lock.json, in its node_modules;
#   - Chromium and chromium-driver (Debian's, when missing), Playwright (tests/requirements.txt,
#     in .venv; it drives that Chromium and never downloads one) and axe-core pinned by
#     tests/ui/package-lock.json, in its node_modules: the web UI's browser tests;
#   - a throwaway PostgreSQL cluster on 127.0.0.1 (KEYMINT_TEST_POSTGRES_URL), removed on exit;
#   - cargo fmt --check, clippy with -D warnings, build of the binaries;
#   - scripts/check-deploy.sh: the packaging in deploy/ (hadolint, kubernetes-validate,
#     check-jsonschema, pinned by deploy/requirements-check.txt, in .venv; systemd-analyze
#     verify; `keymint server --check-config` on every shipped config);
#   - cargo test: the unit tests of each crate, then the three integration test binaries of
#     tests/ (blackbox: the real binary and moto; it: the store and lease workers in process;
#     compat: the Vault clients and the web UI in Chromium). Filters name modules, e.g.
#     `scripts/test.sh creds::`.
# Re-runnable: every step checks before it installs; the cluster is removed however the run ends.
set -euo pipefail

# CI has no stdin; make sure nothing here ever waits on one.
exec </dev/null

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# PostgreSQL's bin dir: initdb/pg_ctl on PATH (symlinks resolved, postgres must sit beside
# pg_ctl), else the newest Debian /usr/lib/postgresql/<version>/bin.
find_pg_bin() {
  local initdb dir
  if initdb=$(command -v initdb) && command -v pg_ctl >/dev/null; then
    dir=$(dirname "$(readlink -f "$initdb")")
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
      echo "$dir"
      return 0
    fi
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

# --- prerequisites ------------------------------------------------------------------------------

step "PostgreSQL binaries"
if ! pg_bin=$(find_pg_bin); then
  echo "    not found; installing Debian's postgresql"
  apt_install postgresql
  pg_bin=$(find_pg_bin) || die "postgresql installed but initdb/pg_ctl not found"
fi
echo "    $pg_bin"
# The harness runs psql to create one database per test; use the one matching the server.
export PATH="$pg_bin:$PATH"

step "moto[server], the AWS CLI, the Vault clients' and the browser tests' Python packages in .venv"
requirements=tests/requirements.txt
grep -q '^moto\[server\]==' "$requirements" || die "$requirements must pin moto[server]==<version>"
ensure_venv
# The stamp holds the requirements file the virtualenv was last filled from.
pip_install_stamped "$requirements" .venv/keymint-requirements.txt moto_server aws playwright
export MOTO_SERVER="$repo/.venv/bin/moto_server"

step "Node.js and node-vault in tests/compat/node-vault"
ensure_node
npm_ci_stamped tests/compat/node-vault
export KEYMINT_NODE
KEYMINT_NODE=$(command -v node)

step "Chromium and axe-core in tests/ui for the web UI's browser tests"
ensure_chromium
npm_ci_stamped tests/ui
export KEYMINT_UI_CHROMIUM=/usr/bin/chromium

# --- static checks and build --------------------------------------------------------------------

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --quiet --workspace --all-targets -- -D warnings

step "cargo build"
cargo build --quiet --workspace --bins
# The black-box tests run this binary; with KEYMINT_BIN set they do not build it themselves.
export KEYMINT_BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/keymint"

# deploy/: the Dockerfile, compose file, Kubernetes manifests and systemd unit, linted and
# validated, and every shipped config checked by the binary just built (its own ==> steps).
bash scripts/check-deploy.sh

# --- throwaway PostgreSQL cluster ---------------------------------------------------------------

# postgres refuses to run as root: as root, run the server as the postgres system user.
as_pg() {
  if is_root; then
    (cd "$pg_dir" && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_dir=""
cleanup() {
  local rc=$?
  if [ -n "$pg_dir" ] && [ -d "$pg_dir" ]; then
    if [ -f "$pg_dir/data/postmaster.pid" ]; then
      if ! as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w -t 20 stop >/dev/null 2>&1; then
        # Our own postmaster, by the pid it recorded.
        kill -9 "$(head -n 1 "$pg_dir/data/postmaster.pid")" 2>/dev/null || true
      fi
    fi
    rm -rf "$pg_dir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "PostgreSQL cluster"
if is_root && ! id -u postgres >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
fi
if is_root; then
  # Under /tmp, not $TMPDIR: the postgres user must be able to reach it.
  pg_dir=$(mktemp -d /tmp/keymint-pg.XXXXXX)
  chown postgres:postgres "$pg_dir"
else
  pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/keymint-pg.XXXXXX")
fi
as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync \
  >"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log" >&2; die "initdb failed"; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A free port can be taken by someone else before postgres binds it; then try another one.
pg_port=""
for _ in 1 2 3 4 5; do
  port=$(free_port)
  # Settings are written (not passed to pg_ctl -o) so paths need no shell quoting. Durability
  # is pointless for a cluster deleted at exit.
  cat >"$pg_dir/data/keymint-test.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pg_dir'
max_connections = 400
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  grep -q "^include = 'keymint-test.conf'" "$pg_dir/data/postgresql.conf" ||
    echo "include = 'keymint-test.conf'" >>"$pg_dir/data/postgresql.conf"
  if as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 30 start >/dev/null 2>&1; then
    pg_port=$port
    break
  fi
done
if [ -z "$pg_port" ]; then
  tail -n 20 "$pg_dir/server.log" >&2 || true
  die "PostgreSQL did not start"
fi
export KEYMINT_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
echo "    $KEYMINT_TEST_POSTGRES_URL"

# --- tests --------------------------------------------------------------------------------------

step "cargo test"
cargo test --workspace "$@"
