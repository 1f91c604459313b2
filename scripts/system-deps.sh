#!/usr/bin/env bash
# System packages the test suite needs beyond Python: promtool and prometheus (Debian package
# `prometheus`), amtool and alertmanager (package `prometheus-alertmanager`, whose server binary Debian
# names `prometheus-alertmanager`), for the rule/config tests and the end-to-end drill. Installs them
# when missing and when allowed (root + apt-get); otherwise says so and lets those tests skip.
#
# Robustness notes (why, not what):
# - The packages' maintainer scripts would start daemons on the default ports 9090/9093. The tests run
#   their own instances on free ports, so service starts are blocked with a policy-rc.d for the duration
#   of the install instead of killing processes afterwards (never kill by name on a shared machine).
# - Other tools may hold the dpkg lock (unattended upgrades, a parallel install): wait for it.
# - The mirror may be briefly unreachable: retry `apt-get update`.
# - Success is verified: a package that installs without the binary we need is an error.
set -euo pipefail

declare -A package_of=(
  [promtool]=prometheus
  [prometheus]=prometheus
  [amtool]=prometheus-alertmanager
  [prometheus-alertmanager]=prometheus-alertmanager
)

missing_packages() {
  local tool
  local -A seen=()
  for tool in "${!package_of[@]}"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      seen[${package_of[$tool]}]=1
    fi
  done
  if [ ${#seen[@]} -gt 0 ]; then
    printf '%s\n' "${!seen[@]}" | sort
  fi
}

mapfile -t need < <(missing_packages)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: ${need[*]} missing and cannot be installed here (need root + apt-get);" \
    "the promtool/amtool/Prometheus tests will be skipped" >&2
  exit 0
fi

echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_options=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)

policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# temporary: created by fundmodel scripts/system-deps.sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  created_policy=1
fi
cleanup() {
  if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi
}
trap cleanup EXIT

updated=0
for attempt in 1 2 3; do
  if apt-get "${apt_options[@]}" update -qq >/dev/null; then
    updated=1
    break
  fi
  echo "apt-get update failed (attempt $attempt/3); retrying" >&2
  sleep $((attempt * 5))
done
[ "$updated" -eq 1 ] || { echo "error: apt-get update kept failing" >&2; exit 1; }

apt-get "${apt_options[@]}" install -y -qq --no-install-recommends "${need[@]}" >/dev/null

mapfile -t still_missing < <(missing_packages)
if [ ${#still_missing[@]} -gt 0 ]; then
  echo "error: installed ${need[*]} but still missing the tools of: ${still_missing[*]}" >&2
  exit 1
fi
echo "installed: $(promtool --version 2>&1 | head -n1); $(amtool --version 2>&1 | head -n1)"
