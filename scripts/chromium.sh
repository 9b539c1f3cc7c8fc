#!/usr/bin/env bash
# Installs Debian's chromium for the website SDK's browser tests when it is missing. Browser
# builds from anywhere else (`npx playwright install`) cannot be fetched here, and are not needed:
# playwright-core drives the system browser. CHROMIUM=/path/to/chromium skips the install.
set -euo pipefail
bin="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$bin" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium is missing: run 'sudo apt-get install chromium' (or set CHROMIUM=/path/to/chromium)" >&2
  exit 1
fi
echo "installing Debian's chromium for the browser tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
"$bin" --version
