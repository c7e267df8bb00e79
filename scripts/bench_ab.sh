#!/usr/bin/env bash
# Plan latency of two `telic` programs, measured alternately in one run on
# this machine: `telic bench --only latency` on reach_realtime, navigate and
# push (MPPI, analytic and learned models, samples × horizon) and the Nav2
# problem (`--only nav2`), ROUNDS rounds each (default 5); prints the median
# of each figure for A and B and their ratio B/A.
#
#   scripts/bench_ab.sh /tmp/telic-before target/debug/telic
set -euo pipefail
a=$1 b=$2 rounds=${ROUNDS:-5}
out=$(mktemp -d)
for _ in $(seq "$rounds"); do
  for side in a b; do
    bin=${!side}
    for scene in reach_realtime navigate push; do
      "$bin" bench "$scene" --only latency 2>&1 | grep -E '^\s+[0-9]+\s+[0-9]+' \
        | sed "s/^/$scene /" >> "$out/$side"
    done
    "$bin" bench --only nav2 2>&1 | grep -oE 'plan [0-9.]+ ms (on one core|with planner.threads = 2)' \
      | sed 's/^/nav2 /' >> "$out/$side"
  done
done
python3 - "$out/a" "$out/b" <<'PY'
import collections, statistics, sys
def load(path):
    d = collections.defaultdict(list)
    for line in open(path):
        p = line.split()
        if p[0] == "nav2":
            d[("nav2", " ".join(p[4:]))].append(float(p[2]))
        else:
            scene, n, h, analytic, learned = p
            d[(scene, n + "x" + h, "analytic")].append(float(analytic))
            d[(scene, n + "x" + h, "learned")].append(float(learned))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
print(f"{'plan latency (ms, median)':44s} {'A':>8s} {'B':>8s} {'B/A':>6s}")
for k in a:
    ma, mb = statistics.median(a[k]), statistics.median(b[k])
    print(f"{' '.join(k):44s} {ma:8.2f} {mb:8.2f} {mb / ma:6.3f}")
PY
rm -rf "$out"
