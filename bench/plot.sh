#!/usr/bin/env bash
# Draw the scaling measurement of one "make bench" run as a PNG (gnuplot):
# IDs/s against sessions for idalloc_one() (cache 1), a cached allocator
# (cache 1000), nextval and gen_random_uuid(), medians over the rounds.
#
#   bash bench/plot.sh [RUN_DIR [OUT.png]]   (default: .run/bench, bench/scaling.png)
#
# Reads RUN_DIR/raw.tsv and RUN_DIR/facts.txt, as bench/report.sh does.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
RUN="${1:-$REPO/.run/bench}"
PNG="${2:-$REPO/bench/scaling.png}"
RAW="$RUN/raw.tsv"
FACTS="$RUN/facts.txt"
[[ -s "$RAW" ]] || { echo "plot.sh: $RAW missing (run 'make bench')" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not installed (gnuplot-nox)" >&2; exit 1; }

fact() {
	local v=""
	[[ -r "$FACTS" ]] && v="$(sed -n "s/^$1=//p" "$FACTS" | head -n 1)"
	echo "${v:-?}"
}

# sessions, then the median M IDs/s of each variant (NaN if not measured)
data="$RUN/scaling.dat"
awk -F'\t' '$1 ~ /^sc\./ { split($1, k, "."); v[k[2] "." k[3]] = v[k[2] "." k[3]] " " $2 }
	END {
		n = split("global cached nextval uuid", names, " ")
		for (c = 1; c <= 8; c *= 2) {
			line = c
			for (i = 1; i <= n; i++) {
				m = split(v[names[i] "." c], a, " ")
				if (m == 0) { line = line " NaN"; continue }
				# median
				for (x = 1; x <= m; x++) for (y = x + 1; y <= m; y++) if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
				med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
				line = line " " med / 1e6
			}
			print line
		}
	}' "$RAW" >"$data"

title="IDs per second against sessions\nN sessions × SELECT count(f) FROM generate_series(1, 10000) (pgbench -M prepared)"
machine="$(fact nproc) vCPU $(fact cpu), PostgreSQL $(fact postgresql), commit $(fact commit), $(fact rounds) rounds (medians)"
gnuplot <<GNUPLOT
set terminal pngcairo size 900,640 font "sans,10" noenhanced
set output "$PNG"
set title "$title\n$machine"
set xlabel "sessions"
set ylabel "million IDs per second (log scale)"
set logscale y
set logscale x 2
set xrange [0.85:9.5]
set xtics ("1" 1, "2" 2, "4" 4, "8" 8)
set grid
set key below
set datafile missing "NaN"
plot "$data" using 1:2 with linespoints lw 2 pt 7 title "idalloc_one() (cache 1)", \
     "$data" using 1:3 with linespoints lw 2 pt 5 title "idalloc_one('cached') (cache 1000)", \
     "$data" using 1:4 with linespoints lw 2 pt 9 title "nextval (CACHE 1)", \
     "$data" using 1:5 with linespoints lw 2 pt 13 title "gen_random_uuid()"
GNUPLOT
echo "plot.sh: wrote $PNG"
