#!/usr/bin/env bash
# Renders docs/examples/text-0.png, the `text` task's example: a real
# screenshot (800×600) of an HTML page every Debian system ships
# (base-passwd's "Users and Groups in the Debian System"), taken with
# Debian's headless Chromium. Needs `apt-get install -y chromium`.
set -euo pipefail
cd "$(dirname "$0")"
PAGE=/usr/share/doc/base-passwd/users-and-groups.html
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -f "$PAGE" ] || { echo "missing $PAGE (Debian's base-passwd)" >&2; exit 1; }
[ -x "$CHROMIUM" ] || { echo "missing $CHROMIUM: apt-get install -y chromium" >&2; exit 1; }
"$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=800,600 \
  --screenshot="$PWD/text-0.png" "file://$PAGE" 2>/dev/null
ls -l text-0.png
