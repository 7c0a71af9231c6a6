#!/usr/bin/env bash
# Make Debian's chromium available for the browser tests (tests/test_web.py drive it with Playwright,
# never a downloaded browser). Quiet; installs only as root with apt-get; never fails the run:
# without chromium the browser tests skip and say why.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "browser.sh: chromium not installed and cannot apt-get it here; the browser tests will skip" >&2
  exit 0
fi
log=$(mktemp)
if { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >"$log" 2>&1; then
  echo "browser.sh: installed $(chromium --version 2>/dev/null)" >&2
else
  echo "browser.sh: apt-get install chromium failed (last lines below); the browser tests will skip" >&2
  tail -5 "$log" >&2
fi
rm -f "$log"
exit 0
