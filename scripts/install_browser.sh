#!/usr/bin/env bash
# Install what the browser tests (pytest -m browser) need, only when missing:
#   Debian Chromium + chromedriver (apt) and the playwright / pytest-playwright packages (pip).
# Never runs `playwright install`: the tests drive /usr/bin/chromium.
# Usage: scripts/install_browser.sh [PYTHON]   (default: .venv/bin/python, else python3)
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${1:-}"
if [[ -z "$PYTHON" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

if [[ ! -x /usr/bin/chromium ]]; then
  SUDO=""
  if [[ "$(id -u)" != "0" ]]; then SUDO="sudo"; fi
  echo "installing chromium and chromium-driver with apt-get" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
fi

if ! "$PYTHON" -c "import playwright.sync_api, pytest_playwright" 2>/dev/null; then
  echo "installing playwright and pytest-playwright with pip" >&2
  "$PYTHON" -m pip install --quiet playwright pytest-playwright
fi

/usr/bin/chromium --version 2>/dev/null || true
"$PYTHON" -c "from importlib.metadata import version; print('playwright', version('playwright'))" >&2
