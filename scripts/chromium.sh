#!/usr/bin/env bash
# Make sure Debian's headless Chromium is installed (the inspector's browser test).
# Never a downloaded browser build: Playwright drives /usr/bin/chromium.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2 || true
  fi
fi
command -v chromium >/dev/null 2>&1 || { echo "chromium unavailable" >&2; exit 1; }
