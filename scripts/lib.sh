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
