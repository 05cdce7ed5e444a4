# Shell helpers shared by scripts/test.sh and scripts/check-deploy.sh (sourced, not run).

step() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Quiet unless it fails; then the whole apt output is shown.
apt_install() {
  is_root || die "need root to apt-get install $*"
  local log
  log=$(mktemp)
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "apt-get install $* failed"
  fi
  rm -f "$log"
}

# The project's virtualenv .venv, created (with Debian's python3-venv if need be) when missing.
ensure_venv() {
  if ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
      echo "    python3 cannot create virtualenvs; installing python3-venv"
      apt_install python3-venv
    fi
    rm -rf .venv
    python3 -m venv .venv
  fi
}

# Installs requirements file $1 into .venv unless the stamp file $2 says it is installed
# already and every executable named after it exists in .venv/bin.
pip_install_stamped() {
  local requirements=$1 stamp=$2 tool
  shift 2
  local fresh=1
  cmp -s "$requirements" "$stamp" || fresh=0
  for tool in "$@"; do
    [ -x ".venv/bin/$tool" ] || fresh=0
  done
  if [ "$fresh" -eq 1 ]; then
    echo "    up to date with $requirements"
  else
    echo "    installing $requirements"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
    cp "$requirements" "$stamp"
  fi
}

# npm ci in directory $1 unless node_modules/.keymint-package-lock.json, the stamp, says its
# package-lock.json is installed already. npm ci installs exactly the lock file.
npm_ci_stamped() {
  local dir=$1
  local stamp=$dir/node_modules/.keymint-package-lock.json
  if cmp -s "$dir/package-lock.json" "$stamp"; then
    echo "    up to date with $dir/package-lock.json ($(node --version))"
  else
    echo "    npm ci in $dir ($(node --version))"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
}

# Node.js and npm, Debian's, when either is missing.
ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "    node or npm not found; installing Debian's nodejs and npm"
    apt_install nodejs npm
  fi
}

# Debian's Chromium and its WebDriver, the browser of the UI tests, when missing. Playwright
# drives this one: it never downloads a browser of its own.
ensure_chromium() {
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    echo "    /usr/bin/chromium not found; installing Debian's chromium and chromium-driver"
    apt_install chromium chromium-driver
  fi
  echo "    $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium (version unknown)')"
}
