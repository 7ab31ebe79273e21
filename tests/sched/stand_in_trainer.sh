#!/bin/bash
# Scheduler tests' stand-in for `medxfer train --run DIR` until the real trainer is merged: it behaves like a
# run (status running, waits, result.json, status finished) and counts how many run at once.
set -eu
dir=$3
base=$(dirname "$0")
echo "start $(basename "$dir") $$" >> "$base/events.log"
if grep -q '^init = "random"' "$dir/spec.toml"; then  # stands for a trainer that fails
  printf '{"state":"failed","reason":"stand-in failure","updated":"2026-01-01T00:00:00Z"}' > "$dir/.st"
  mv "$dir/.st" "$dir/status.json"
  exit 1
fi
(
  flock 9
  n=$(( $(cat "$base/running" 2>/dev/null || echo 0) + 1 ))
  echo $n > "$base/running"
  if [ "$n" -gt "$(cat "$base/max" 2>/dev/null || echo 0)" ]; then echo $n > "$base/max"; fi
) 9>"$base/count.lock"
printf '{"state":"running","epoch":0,"pid":%d,"updated":"2026-01-01T00:00:00Z"}' $$ > "$dir/.st"
mv "$dir/.st" "$dir/status.json"
while [ ! -e "$base/release" ]; do sleep 0.05; done
( flock 9; echo $(( $(cat "$base/running") - 1 )) > "$base/running" ) 9>"$base/count.lock"
echo '{"run_id":"stand-in"}' > "$dir/result.json"
printf '{"state":"finished","epoch":1,"pid":null,"updated":"2026-01-01T00:00:00Z"}' > "$dir/.st"
mv "$dir/.st" "$dir/status.json"
echo "end $(basename "$dir") $$" >> "$base/events.log"
