#!/usr/bin/env bash
# Copies the screenshots the guides show from web/screenshots (written by
# the browser tests: go test ./web -run TestBrowser) to docs/img, made
# small with pngquant when it is installed (apt-get install pngquant).
# FHIRGATE_SCREENSHOTS: another source directory; an argument: copy only
# the images whose docs/img name matches that extended regular expression
# (e.g. ./doc-images.sh '^(admin|practitioner)-').
set -euo pipefail
cd "$(dirname "$0")/../.."
src=${FHIRGATE_SCREENSHOTS:-web/screenshots} dst=docs/img only=${1:-}
mkdir -p "$dst"
while read -r from to; do
	[ -z "$only" ] || [[ "$to" =~ $only ]] || continue
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
reg-07-patient-form.png patient-register.png
reg-08-second-request-refused.png patient-register-second-refused.png
reg-09-request-verified.png patient-register-verified.png
reg-10b-patient-activity-admin.png patient-register-activity.png
reg-02-practitioner-form.png practitioner-register.png
reg-03-request-pending.png practitioner-request-pending.png
reg-24-doctor-new-wallet-account.png practitioner-account.png
reg-12-doctor-upload.png practitioner-upload.png
reg-15-doctor-refused.png practitioner-report-refused.png
reg-20-doctor-session-ended.png practitioner-session-ended.png
reg-04-admin-queue.png admin-queue.png
reg-05-admin-verified.png admin-verified.png
reg-06-request-rejected.png admin-rejected-seen-by-requester.png
reg-18-admin-deactivated.png admin-practitioners.png
reg-17-admin-deactivate.png admin-deactivate.png
reg-19-admin-lost-wallet.png admin-lost-wallet.png
reg-23-admin-replace-wallet.png admin-replace-wallet.png
reg-25-admin-link-record.png admin-link-record.png
reg-26-old-wallet-no-longer-linked.png practitioner-old-wallet.png
LIST
ls -l "$dst"
