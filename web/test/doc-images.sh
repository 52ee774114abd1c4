#!/usr/bin/env bash
# Copies the screenshots the guides show from web/screenshots (written by
# the browser tests: go test ./web -run TestBrowser) to docs/img, made
# small with pngquant when it is installed (apt-get install pngquant).
set -euo pipefail
cd "$(dirname "$0")/../.."
src=web/screenshots dst=docs/img
mkdir -p "$dst"
while read -r from to; do
	[ -f "$src/$from" ] || { echo "missing $src/$from: run the browser tests first" >&2; exit 1; }
	if command -v pngquant >/dev/null; then
		pngquant --force --strip --quality 55-80 --speed 1 --output "$dst/$to" "$src/$from"
	else
		cp "$src/$from" "$dst/$to"
	fi
done <<'LIST'
04-signin-wrong-chain.png patient-signin-wrong-chain.png
07-appointments.png patient-appointments.png
08-reports.png patient-reports.png
10-sharing.png patient-sharing.png
16-activity.png patient-activity.png
17-transactions.png patient-transactions.png
phone-sharing.png patient-phone-sharing.png
phone-transactions.png patient-phone-transactions.png
12-doctor-patients.png practitioner-patients.png
15-emergency.png practitioner-emergency.png
20b-verify-evidence.png regulator-verify.png
21b-verify-tampered-evidence.png regulator-tampered.png
22b-timeline.png regulator-timeline.png
LIST
ls -l "$dst"
