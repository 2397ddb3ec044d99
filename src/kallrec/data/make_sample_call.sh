#!/usr/bin/env bash
# Regenerates sample-call.wav, the short demo call kallrec imports on first start.
#
# The WAV is committed to the repository; this script is NOT run at install or start time. It
# documents how the file was made so it can be changed or rebuilt:
#
#   apt-get install espeak-ng sox      # Debian 12: espeak-ng 1.51, sox 14.4.2
#   src/kallrec/data/make_sample_call.sh
#
# Output: ~19 s, WAV, G.711 μ-law, 8 kHz, mono; two synthetic voices taking turns (agent and
# customer) band-limited to 300-3400 Hz like a real phone line.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$here/sample-call.wav"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# voice, pitch (0-99), words per minute, text
turns=(
  "en-us+m3|40|170|Thank you for calling kallrec support, this is Alex. How can I help you today?"
  "en-gb+f3|70|180|Hi Alex. I can't find the recording of yesterday's call with my accountant."
  "en-us+m3|40|170|Let me check. Found it: the recording is ready, and I've just emailed you the link."
  "en-gb+f3|70|180|Perfect, that was quick. Thanks a lot!"
)

parts=()
i=0
for turn in "${turns[@]}"; do
  IFS='|' read -r voice pitch speed text <<<"$turn"
  espeak-ng -v "$voice" -p "$pitch" -s "$speed" -w "$work/raw$i.wav" "$text"
  # Phone-line band, 8 kHz, and a short pause after each turn.
  sox "$work/raw$i.wav" -r 8000 -c 1 -b 16 "$work/turn$i.wav" \
    sinc 300-3400 rate -v 8000 pad 0 0.45
  parts+=("$work/turn$i.wav")
  i=$((i + 1))
done

sox "${parts[@]}" -e u-law -b 8 -r 8000 -c 1 "$out" pad 0.3 0 norm -3
soxi "$out"
