#!/usr/bin/env bash
# Make sure headless Chromium and its WebDriver are installed for the browser tests
# (tests/e2e/test_portal.py): Debian's `chromium` and `chromium-driver` packages, whose
# versions always match. Installs them with apt-get when running as root; otherwise says what
# to install and exits 1. Prints the two paths when all is well.
set -euo pipefail

CHROMIUM="${MAILBOX_CHROMIUM:-/usr/bin/chromium}"
CHROMEDRIVER="${MAILBOX_CHROMEDRIVER:-/usr/bin/chromedriver}"

# pdftotext (poppler-utils) reads back the demo archive's PDFs in tests/unit/demo/test_demo_archive.py.
have() { [[ -x "$CHROMIUM" && -x "$CHROMEDRIVER" ]] && command -v pdftotext >/dev/null; }

if ! have; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "ensure-chromium: $CHROMIUM or $CHROMEDRIVER is missing and we are not root;" \
         "install them with: sudo apt-get install -y chromium chromium-driver" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: no apt-get here; install Chromium and its chromedriver, then set" \
         "MAILBOX_CHROMIUM and MAILBOX_CHROMEDRIVER" >&2
    exit 1
  fi
  echo "ensure-chromium: installing chromium and chromium-driver with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # fonts-dejavu-core: screenshots need at least one real font.
  apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core poppler-utils >/dev/null
fi

if ! have; then
  echo "ensure-chromium: installation did not produce $CHROMIUM, $CHROMEDRIVER and pdftotext" >&2
  exit 1
fi
echo "chromium:     $CHROMIUM"
echo "chromedriver: $CHROMEDRIVER"
