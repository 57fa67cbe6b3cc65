#!/bin/sh
# Seeds each fuzz target's corpus with the repository's own payloads (tests/fixtures), so that a
# run starts from well-formed notifications, alerts and configs instead of random bytes.
# Usage, from the repository root or from fuzz/: sh fuzz/seed.sh
set -eu
cd "$(dirname "$0")"
fixtures=../tests/fixtures
mkdir -p corpus/notification corpus/alert_payloads corpus/config corpus/expressions
cp "$fixtures"/whatsapp/*.json corpus/notification/
cp "$fixtures"/alertmanager/*.json "$fixtures"/datadog/*.json "$fixtures"/pagerduty/*.json \
    corpus/alert_payloads/
cp "$fixtures"/tutorial/whatsapp-bot.yaml corpus/config/
# Every line of the tutorial's flows that holds a template, one file each.
n=0
grep -h '{[{%]' "$fixtures"/tutorial/flows/*.yaml | while IFS= read -r line; do
    n=$((n + 1))
    printf '%s' "$line" > "corpus/expressions/flow-line-$n"
done
for target in notification alert_payloads config expressions; do
    echo "$target: $(ls corpus/$target | wc -l) seeds"
done
