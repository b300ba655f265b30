#!/usr/bin/env bash
# Renders r1flow's HTML reports (`report` and `compare` of a tiny ablation) in headless
# Chromium and fails unless the screenshots show text and plot lines (not a blank page).
# Needs `chromium` on PATH (Debian: apt-get install chromium) or CHROMIUM=/path/to/it.
# The screenshots are kept in target/report-screenshots/ (or R1FLOW_SCREENSHOT_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$browser" ] || ! "$browser" --version >/dev/null 2>&1; then
  echo "check_report_renders: no working chromium (install it, or set CHROMIUM)" >&2
  exit 1
fi
"$browser" --version
export CHROMIUM="$browser"
export R1FLOW_SCREENSHOT_DIR=${R1FLOW_SCREENSHOT_DIR:-$PWD/target/report-screenshots}
cargo test --locked --test it report::reports_render_in_headless_chromium -- --ignored --exact
echo "screenshots: $R1FLOW_SCREENSHOT_DIR/report.png, $R1FLOW_SCREENSHOT_DIR/compare.png"
