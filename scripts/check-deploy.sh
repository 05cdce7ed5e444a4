#!/usr/bin/env bash
# Validates the production packaging in deploy/ (scripts/test.sh runs it, so CI does):
#   scripts/check-deploy.sh
#
#   - hadolint on deploy/Dockerfile (fails on warnings and errors);
#   - kubernetes-validate, strict, against Kubernetes 1.30 (the oldest supported) and 1.37, on
#     every manifest in deploy/kubernetes, offline (the package bundles the schemas);
#   - check-jsonschema on deploy/compose.yaml against its vendored Compose Specification;
#   - systemd-analyze verify on deploy/systemd/keymint.service, and its security exposure;
#   - what no schema sees (scripts/check_deploy.py): selectors, Secret and ConfigMap keys,
#     grace periods against keymint's shutdown, the Dockerfile's Rust against the toolchain;
#   - `keymint server --check-config` on config/*.toml, the deploy/ ones and the Kubernetes
#     ConfigMap's, given throwaway seal keys and a self-signed certificate made here.
# The linters are pinned by deploy/requirements-check.txt and installed into .venv, again only
# when that file changes. Needs root only to apt-get install what a fresh Debian lacks.
# The keymint binary: $KEYMINT_BIN (scripts/test.sh sets it), else target/debug/keymint, built.
set -euo pipefail

exec </dev/null

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/keymint-deploy.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- tools --------------------------------------------------------------------------------------

step "hadolint, kubernetes-validate and check-jsonschema in .venv"
ensure_venv
# As scripts/test.sh does for tests/requirements.txt: the stamp is the file last installed.
pip_install_stamped deploy/requirements-check.txt .venv/keymint-deploy-requirements.txt \
  hadolint kubernetes-validate check-jsonschema
venv_python=.venv/bin/python

if ! command -v systemd-analyze >/dev/null; then
  echo "    systemd-analyze not found; installing Debian's systemd"
  apt_install systemd
fi

# --- linters and schemas ------------------------------------------------------------------------

step "hadolint deploy/Dockerfile"
# Everything hadolint finds is printed; warnings and errors fail. An ignored rule is written
# as `# hadolint ignore=DLxxxx` above its line, with the reason beside it.
.venv/bin/hadolint --no-color --failure-threshold warning deploy/Dockerfile
echo "    ok"

step "kubernetes-validate --strict (Kubernetes 1.30 and 1.37) on deploy/kubernetes"
# kustomization.yaml is kustomize's, not the API's: scripts/check_deploy.py checks it.
manifests=()
for f in deploy/kubernetes/*.yaml deploy/kubernetes/examples/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
# A resource with no schema (an unknown kind or apiVersion) is only a WARN with exit 0 to
# kubernetes-validate; here it fails like any other problem.
if ! out=$(.venv/bin/kubernetes-validate --strict --quiet -k 1.30.0 -k 1.37.0 "${manifests[@]}" 2>&1) ||
  [ -n "$out" ]; then
  printf '%s\n' "$out" >&2
  die "kubernetes-validate found problems"
fi
echo "    ok: ${manifests[*]}"

step "check-jsonschema (Compose Specification) on deploy/compose.yaml"
.venv/bin/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml | sed 's/^/    /'

step "systemd-analyze verify deploy/systemd/keymint.service"
# verify refuses a unit whose ExecStart binary does not exist, and /usr/local/bin/keymint
# does not here: verify a copy that runs the binary under test instead, with the same name so
# messages name keymint.service. verify reports a mistyped option or a bad value only as a
# warning with exit status 0: any line about the unit fails the check. Lines about the system's
# own units (loaded as dependencies) are shown, not counted.
keymint_bin="${KEYMINT_BIN:-}"
if [ -z "$keymint_bin" ]; then
  keymint_bin="${CARGO_TARGET_DIR:-$repo/target}/debug/keymint"
  echo "    KEYMINT_BIN unset: cargo build -p keymint-cli (for $keymint_bin)"
  cargo build --quiet -p keymint-cli --bin keymint
fi
[ -x "$keymint_bin" ] || die "no keymint binary at $keymint_bin"
mkdir -p "$work/systemd"
sed "s|/usr/local/bin/keymint|$keymint_bin|g" deploy/systemd/keymint.service >"$work/systemd/keymint.service"
status=0
out=$(systemd-analyze verify "$work/systemd/keymint.service" 2>&1) || status=$?
if [ -n "$out" ]; then
  printf '%s\n' "$out" | sed 's/^/    /'
fi
if [ "$status" -ne 0 ] || printf '%s\n' "$out" | grep -q 'keymint\.service'; then
  die "systemd-analyze verify found problems in deploy/systemd/keymint.service"
fi
# The hardening, as one number (0 is the most confined, 10 the least; 1.4 when written).
# Dropping a protection raises it past the threshold.
if ! out=$(systemd-analyze security --offline=yes --threshold=15 "$work/systemd/keymint.service" 2>&1); then
  printf '%s\n' "$out" | grep -E '✗|Overall' >&2 || printf '%s\n' "$out" >&2
  die "deploy/systemd/keymint.service: exposure above 1.5 (systemd-analyze security)"
fi
echo "    ok ($(printf '%s\n' "$out" | grep -o 'exposure level.*' | sed 's/ for keymint.service//'))"

step "cross-file checks (scripts/check_deploy.py)"
"$venv_python" scripts/check_deploy.py consistency || die "deploy/ files disagree (above)"
echo "    ok"

# --- keymint's own config check -----------------------------------------------------------------

step "keymint server --check-config on every shipped config"
"$keymint_bin" server --help | grep -q -- '--check-config' ||
  die "$keymint_bin has no 'server --check-config'"

# Throwaway key material, made for this run and deleted with $work.
random_key() { head -c 32 /dev/urandom | base64; }
random_key >"$work/seal.key"
tls_cert="$work/tls.crt"
tls_key="$work/tls.key"
if ! command -v openssl >/dev/null && ! "$venv_python" -c 'import cryptography' >/dev/null 2>&1; then
  echo "    neither openssl nor Python's cryptography; installing Debian's openssl"
  apt_install openssl
fi
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$tls_key" -out "$tls_cert" >/dev/null 2>&1 || die "openssl could not make a certificate"
else
  "$venv_python" - "$tls_cert" "$tls_key" <<'PY'
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
now = datetime.datetime.now(datetime.timezone.utc)
alt = x509.SubjectAlternativeName(
    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(alt, critical=False).sign(key, hashes.SHA256()))
open(sys.argv[1], "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(sys.argv[2], "wb").write(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
PY
fi

# Configs whose deployment sets KEYMINT_STORAGE_URL from a secret (it carries the password);
# any other config must name its storage itself.
kubernetes_toml="$work/kubernetes-configmap/keymint.toml"
storage_from_env=" deploy/compose/keymint.toml $kubernetes_toml "
mkdir -p "$(dirname "$kubernetes_toml")"
"$venv_python" scripts/check_deploy.py configmap-toml "$kubernetes_toml"

# keymint must refuse a bad file, or passing says nothing.
printf '[storage]\nurl = "mysql://nope"\n' >"$work/bad.toml"
if env -i PATH="$PATH" "$keymint_bin" server --check-config "$work/bad.toml" >/dev/null 2>&1; then
  die "keymint server --check-config accepted a config with no seal key and a bad URL"
fi

failed=0
for config in config/*.toml deploy/*/*.toml "$kubernetes_toml"; do
  # A clean environment: nothing from this shell (a KEYMINT_STORAGE_URL, say) may help.
  vars=(PATH="$PATH")
  given=()
  while read -r need arg; do
    case "$need" in
      seal_file)
        vars+=(KEYMINT_SEAL_KEY_FILE="$work/seal.key")
        given+=("seal.key_file: a throwaway key")
        ;;
      seal_env)
        vars+=("$arg=$(random_key)")
        given+=("$arg: a throwaway key")
        ;;
      tls)
        vars+=(KEYMINT_LISTENER_TLS_CERT_FILE="$tls_cert" KEYMINT_LISTENER_TLS_KEY_FILE="$tls_key")
        given+=("TLS files: a self-signed pair")
        ;;
      no_storage_url)
        if [[ "$storage_from_env" == *" $config "* ]]; then
          vars+=(KEYMINT_STORAGE_URL="postgres://keymint:throwaway@postgres:5432/keymint")
          given+=("KEYMINT_STORAGE_URL, as its deployment sets it")
        fi
        ;;
    esac
  done < <("$venv_python" scripts/check_deploy.py config-needs "$config")
  label=$config
  [ "$config" != "$kubernetes_toml" ] || label="deploy/kubernetes/configmap.yaml: keymint.toml"
  if out=$(env -i "${vars[@]}" "$keymint_bin" server --check-config "$config" 2>&1); then
    note=""
    if [ "${#given[@]}" -gt 0 ]; then
      printf -v note '%s; ' "${given[@]}"
      note=" (given ${note%; })"
    fi
    echo "    ok: $label$note"
  else
    echo "    FAILED: $label" >&2
    printf '%s\n' "$out" | sed 's/^/      /' >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] || die "keymint server --check-config refused a shipped config"
