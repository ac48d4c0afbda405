#!/usr/bin/env bash
# End-to-end benchmark of `wirewatch run`: backlog, restart, live latency, scale.
#
#   scripts/bench.sh              # default: N=50000, live 500 files/s for 20 s, scale 10k and 100k
#   scripts/bench.sh --quick      # N=2000, live 5 s, scale 2k and 10k, 2 runs (about a minute)
#   N=5000 LIVE_SECS=10 scripts/bench.sh
#   SCALE_MAX=1000000 scripts/bench.sh   # adds the 1M-article scale step (~11 GB of disk, ~30 min more)
#
# Environment (defaults in brackets):
#   N [50000]            files in the backlog corpus
#   RUNS [3]             hyperfine runs of the backlog (restart: at least 5)
#   LIVE_RATE [500]      files per second dropped by rename into the running daemon
#   LIVE_SECS [20]       how long the drops last
#   SCALE_STEPS ["10000 100000"]  corpus sizes of the scale steps ("" skips them)
#   SCALE_MAX [0]        when set, steps above it are dropped and it is added as the last step
#   SEED [42]            corpus generator seed
#   BENCH_TMP [$TMPDIR or /tmp]   where the bench folder is made (must not be tmpfs to mean anything)
#   KEEP [0]             1 keeps the bench folder (its path is printed)
#   WW_WORKERS [0] WW_CHANNEL_CAPACITY [256] WW_BATCH_RECORDS [256] WW_BATCH_MS [5] WW_LINGER_MS [0]
#   WW_SETTLE_MS [500]   daemon knobs written to the bench config (see config/wirewatch.toml)
#   WW_HTTP [127.0.0.1:19465]  the daemons' HTTP listener: the live step reads its /metrics
#
# Needs /usr/bin/time (apt-get install time), hyperfine (apt-get install hyperfine) and
# python3.
# Corpora come from `cargo run --release --example gen_corpus` (deterministic, ~4 KB
# files, ~20 % update versions, mtime = capture time); live drops and latency from
# `--example live_latency`. Figures go to stdout and to target/bench/results.md; raw
# tool outputs to target/bench/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export LC_ALL=C

QUICK=0
for a in "$@"; do
    case $a in
    --quick) QUICK=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "bench.sh: unknown argument $a (try --help)" >&2
        exit 2
        ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    N=${N:-2000}
    LIVE_SECS=${LIVE_SECS:-5}
    SCALE_STEPS=${SCALE_STEPS-"2000 10000"}
    RUNS=${RUNS:-2}
else
    N=${N:-50000}
    LIVE_SECS=${LIVE_SECS:-20}
    SCALE_STEPS=${SCALE_STEPS-"10000 100000"}
    RUNS=${RUNS:-3}
fi
LIVE_RATE=${LIVE_RATE:-500}
SCALE_MAX=${SCALE_MAX:-0}
SEED=${SEED:-42}
BENCH_TMP=${BENCH_TMP:-${TMPDIR:-/tmp}}
KEEP=${KEEP:-0}
WW_WORKERS=${WW_WORKERS:-0}
WW_CHANNEL_CAPACITY=${WW_CHANNEL_CAPACITY:-256}
WW_BATCH_RECORDS=${WW_BATCH_RECORDS:-256}
WW_BATCH_MS=${WW_BATCH_MS:-5}
WW_LINGER_MS=${WW_LINGER_MS:-0}
WW_HTTP=${WW_HTTP:-127.0.0.1:19465}
WW_SETTLE_MS=${WW_SETTLE_MS:-500}

if [ "$SCALE_MAX" -gt 0 ]; then
    steps=""
    for s in $SCALE_STEPS; do [ "$s" -lt "$SCALE_MAX" ] && steps="$steps $s"; done
    SCALE_STEPS="$steps $SCALE_MAX"
fi
LIVE_N=$(awk -v r="$LIVE_RATE" -v s="$LIVE_SECS" 'BEGIN { printf "%d", r * s + 0.5 }')
RESTART_RUNS=$((RUNS > 5 ? RUNS : 5))

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install -y time)"
command -v hyperfine > /dev/null || die "hyperfine is missing (apt-get install -y hyperfine)"

log "building (release): wirewatch, examples gen_corpus and live_latency"
cargo build --release --locked --quiet --bin wirewatch --example gen_corpus --example live_latency
BIN=$ROOT/target/release/wirewatch
GEN=$ROOT/target/release/examples/gen_corpus
LIVE=$ROOT/target/release/examples/live_latency

OUTDIR=$ROOT/target/bench
LOGS=$OUTDIR/logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
RESULTS=$OUTDIR/results.md

mkdir -p "$BENCH_TMP"
WORK=$(mktemp -d "$BENCH_TMP/wirewatch-bench.XXXXXX")
DPID=""
cleanup() {
    if [ -n "$DPID" ] && kill -0 "$DPID" 2> /dev/null; then
        kill -TERM "$DPID" 2> /dev/null || true
        wait "$DPID" 2> /dev/null || true
    fi
    if [ "$KEEP" = 1 ]; then
        log "bench folder kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log "bench folder: $WORK"

# ---------------------------------------------------------------- helpers

# make_config DIR: DIR/wirewatch.toml with absolute paths under DIR.
make_config() {
    local d=$1
    mkdir -p "$d/inbox"
    cat > "$d/wirewatch.toml" << EOF
# written by scripts/bench.sh
[watch]
dir = "$d/inbox"
settle_ms = $WW_SETTLE_MS

[output]
path = "$d/out/articles.jsonl"
rejects = "$d/out/rejected.jsonl"
batch_records = $WW_BATCH_RECORDS
batch_ms = $WW_BATCH_MS
linger_ms = $WW_LINGER_MS

[state]
dir = "$d/state"

[pipeline]
workers = $WW_WORKERS
channel_capacity = $WW_CHANNEL_CAPACITY

[http]
listen = "$WW_HTTP"
EOF
    "$BIN" validate --config "$d/wirewatch.toml" > /dev/null
}

# kv FILE KEY: value of a key=value line.
kv() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# tv FILE FIELD: a field of /usr/bin/time -v output.
tv() { sed -n "s/^[[:space:]]*$2[^:]*: //p" "$1" | head -n 1; }

# tv_wall FILE: elapsed wall time of /usr/bin/time -v output, in seconds.
tv_wall() {
    tv "$1" 'Elapsed (wall clock) time (h:mm:ss or m:ss)' |
        awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.3f", s }'
}

# tv_rss_mib FILE: peak RSS in MiB.
tv_rss_mib() { tv "$1" 'Maximum resident set size (kbytes)' | awk '{ printf "%.1f", $1 / 1024 }'; }

# hf CSV COLUMN: a column (mean, stddev, median, min, max) of a hyperfine CSV.
hf() {
    awk -F, -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i }
        NR == 2 { printf "%.4f", $c }' "$1"
}

# summary_nums STDERR_FILE: "seen emitted updates duplicates stale rejected unchanged".
summary_nums() {
    grep -a 'files seen' "$1" | tail -n 1 | sed 's/\x1b\[[0-9;]*m//g; s/.*stopped: //; s/.*wirewatch: //' |
        grep -o '[0-9]\+' | tr '\n' ' ' | sed 's/ $//'
}

calc() { awk "BEGIN { printf \"$1\", $2 }"; }
thousands() { printf '%s' "$1" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "**missed**"; fi; }

# gen REPORT ARGS...: gen_corpus with the bench seed; key=value counts in REPORT.
gen() {
    local report=$1
    shift
    "$GEN" --seed "$SEED" "$@" > "$report" 2> "$report.err" ||
        die "gen_corpus failed: $(cat "$report.err")"
    grep -v '/.* files (' "$report.err" >&2 || true
}

# scrape FILE: the daemon's /metrics into FILE (empty if it does not answer).
scrape() {
    python3 - "$WW_HTTP" > "$1" << 'PY' || : > "$1"
import sys, urllib.request
print(urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode())
PY
}

# metric FILE SERIES: the value of SERIES (name and labels) in a scrape.
metric() {
    awk -v s="$2" '$1 == s { printf "%.0f", $2 }' "$1"
}

# commit_figures BEFORE AFTER: commits, batch sizes and commit times between two scrapes.
commit_figures() {
    python3 - "$1" "$2" << 'PY'
import sys
def read(path):
    out = {}
    for line in open(path):
        if line and not line.startswith("#") and " " in line:
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out
a, b = read(sys.argv[1]), read(sys.argv[2])
d = lambda k: b.get(k, 0.0) - a.get(k, 0.0)
def timing(name):
    n = d(f"{name}_count")
    if n <= 0:
        return "none"
    buckets = sorted(
        (float(k.split('le="')[1].rstrip('"}')), d(k))
        for k in b if k.startswith(f"{name}_bucket") and "+Inf" not in k)
    p99 = next((le for le, c in buckets if c >= 0.99 * n), float("inf"))
    return f"mean {1000 * d(f'{name}_sum') / n:.2f} ms, p99 ≤ {1000 * p99:.1f} ms"
batches, files = d("wirewatch_batch_files_count"), d("wirewatch_batch_files_sum")
if batches <= 0:
    print("no commits measured")
else:
    print(f"{batches:.0f} commits for {files:.0f} files ({files / batches:.1f} per commit); "
          f"state commit {timing('wirewatch_state_commit_seconds')}; "
          f"output write + fsync {timing('wirewatch_output_sync_seconds')}")
PY
}

# once NAME DIR: `run --once` under /usr/bin/time -v; logs NAME.time / NAME.err
once() {
    local name=$1 d=$2
    /usr/bin/time -v -o "$LOGS/$name.time" "$BIN" run --once --config "$d/wirewatch.toml" \
        2> "$LOGS/$name.err" || die "$name: wirewatch run --once failed: $(tail -n 5 "$LOGS/$name.err")"
}

# ---------------------------------------------------------------- machine

CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
NPROC=$(nproc)
KERNEL=$(uname -sr)
MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
FS=$(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')
COMMIT=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)
git diff --quiet HEAD 2> /dev/null || COMMIT="$COMMIT (+ uncommitted changes)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
awk -v l="${LOAD_START%% *}" -v n="$NPROC" 'BEGIN { exit !(l > n / 4) }' &&
    log "warning: load average is $LOAD_START on $NPROC CPUs: other work competes with the benchmark"
[ "${FS%% *}" = tmpfs ] && log "warning: $WORK is on tmpfs: fsync is free there, figures are not representative"

# ---------------------------------------------------------------- corpus

M=$WORK/main
make_config "$M"
log "generating $N files (+ $LIVE_N for the live drops), seed $SEED"
G=$WORK/main.gen
gen "$G" --out "$M/inbox" --n "$N" --live-out "$WORK/live-staging" --live-n "$LIVE_N"
FILES=$(kv "$G" files)
UPDATES=$(kv "$G" updates)
BYTES=$(kv "$G" bytes)
LIVE_FILES=$(kv "$G" live_files)
LIVE_UPDATES=$(kv "$G" live_updates)
[ "$FILES" = "$N" ] || die "generator wrote $FILES files, wanted $N"
sync # the corpus's writeback must not compete with the daemon's fsyncs

log "checking a sample with wirewatch check"
mapfile -t SAMPLE < <(find "$M/inbox" -type f | sort |
    awk -v n="$N" 'BEGIN { k = int(n / 20); if (k < 1) k = 1 } (NR - 1) % k == 0' | head -n 20)
"$BIN" check --config "$M/wirewatch.toml" "${SAMPLE[@]}" > "$LOGS/check.jsonl" 2> "$LOGS/check.err" ||
    die "wirewatch check rejected generated files: $(head -n 3 "$LOGS/check.err")"
CHECKED=$(wc -l < "$LOGS/check.jsonl")
[ "$CHECKED" -eq "${#SAMPLE[@]}" ] || die "check printed $CHECKED records for ${#SAMPLE[@]} files"

# ---------------------------------------------------------------- 1. backlog

log "cat floor: find | xargs cat over $N files (warm cache)"
CAT_CMD="find $M/inbox -type f -print0 | xargs -0 cat > /dev/null"
hyperfine --warmup 2 --runs 10 --export-csv "$LOGS/cat.csv" "$CAT_CMD" > "$LOGS/cat.hyperfine" 2>&1
CAT_S=$(hf "$LOGS/cat.csv" mean)
CAT_MIN=$(hf "$LOGS/cat.csv" min)

log "backlog: run --once on $N files, fresh state ($RUNS runs)"
RUN_CMD="$BIN run --once --config $M/wirewatch.toml"
hyperfine --runs "$RUNS" --prepare "rm -rf $M/state $M/out" --export-csv "$LOGS/backlog.csv" \
    "$RUN_CMD" > "$LOGS/backlog.hyperfine" 2>&1 || die "backlog: hyperfine failed (see $LOGS/backlog.hyperfine)"
BL_S=$(hf "$LOGS/backlog.csv" mean)
BL_SD=$(hf "$LOGS/backlog.csv" stddev)
rm -rf "$M/state" "$M/out"
once backlog "$M"
BL_RSS=$(tv_rss_mib "$LOGS/backlog.time")
BL_CPU=$(tv "$LOGS/backlog.time" 'Percent of CPU this job got')
BL_CPUS=$(awk '/User time|System time/ { s += $NF } END { printf "%.2f", s }' "$LOGS/backlog.time")
BL_US=$(calc %.0f "$BL_CPUS * 1e6 / $N")
BL_TW=$(tv_wall "$LOGS/backlog.time")
BL_SUM=$(summary_nums "$LOGS/backlog.err")
read -r _ BL_EMIT BL_UPD BL_DUP BL_STALE BL_REJ BL_UNCH <<< "$BL_SUM"
BL_FPS=$(calc %.0f "$N / $BL_S")
BL_MBS=$(calc %.1f "$BYTES / 1e6 / $BL_S")
BL_RATIO=$(calc %.1f "$BL_S / $CAT_S")
BL_OK="expected $FILES emitted ($UPDATES updates)"
if [ "$BL_EMIT" = "$FILES" ] && [ "$BL_UPD" = "$UPDATES" ] && [ "$BL_DUP$BL_STALE$BL_REJ" = 000 ]; then
    BL_OK="$BL_OK: ok"
else
    BL_OK="$BL_OK: **MISMATCH**"
fi
OUT_BYTES=$(stat -c %s "$M/out/articles.jsonl")

# ---------------------------------------------------------------- 2. restart

log "restart: run --once again, state kept ($RESTART_RUNS runs)"
hyperfine --warmup 1 --runs "$RESTART_RUNS" --export-csv "$LOGS/restart.csv" "$RUN_CMD" \
    > "$LOGS/restart.hyperfine" 2>&1 || die "restart: hyperfine failed"
RS_S=$(hf "$LOGS/restart.csv" mean)
RS_SD=$(hf "$LOGS/restart.csv" stddev)
once restart "$M"
RS_RSS=$(tv_rss_mib "$LOGS/restart.time")
read -r _ RS_EMIT _ _ _ _ RS_UNCH <<< "$(summary_nums "$LOGS/restart.err")"
RS_OK="expected 0 emitted, $N unchanged"
if [ "$RS_EMIT" = 0 ] && [ "$RS_UNCH" = "$N" ]; then RS_OK="$RS_OK: ok"; else RS_OK="$RS_OK: **MISMATCH**"; fi

# ---------------------------------------------------------------- 3. live

log "live: daemon on the backlog state; $LIVE_N files by rename at $LIVE_RATE/s"
"$BIN" run --config "$M/wirewatch.toml" 2> "$LOGS/daemon.log" &
DPID=$!
for _ in $(seq 600); do
    grep -qs 'wirewatch running' "$LOGS/daemon.log" && break
    kill -0 "$DPID" 2> /dev/null || die "daemon exited: $(tail -n 5 "$LOGS/daemon.log")"
    sleep 0.1
done
grep -qs 'wirewatch running' "$LOGS/daemon.log" || die "daemon did not start within 60 s"
# The commits of the live drops only: /metrics once the start-up walk has found every
# backlog file unchanged, and again after the drops.
for _ in $(seq 600); do
    scrape "$LOGS/live-before.metrics"
    [ "$(metric "$LOGS/live-before.metrics" wirewatch_unchanged_total)" = "$N" ] && break
    sleep 0.1
done
"$LIVE" --from "$WORK/live-staging" --inbox "$M/inbox" --output "$M/out/articles.jsonl" \
    --rate "$LIVE_RATE" --duration "$LIVE_SECS" --pid "$DPID" --wait-idle \
    > "$LOGS/live.txt" 2> "$LOGS/live.err" || log "live_latency reported lost files (see $LOGS/live.txt)"
scrape "$LOGS/live-after.metrics"
kill -TERM "$DPID"
wait "$DPID" || die "daemon exited with status $? on SIGTERM"
DPID=""
LV_COMMITS=$(commit_figures "$LOGS/live-before.metrics" "$LOGS/live-after.metrics")
R=$(grep '^RESULT ' "$LOGS/live.txt" | sed 's/^RESULT //')
[ -n "$R" ] || die "live_latency printed no result: $(cat "$LOGS/live.err")"
lv() { printf '%s\n' "$R" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
LV_P50=$(calc %.1f "$(lv p50_ms)")
LV_P99=$(calc %.1f "$(lv p99_ms)")
LV_MAX=$(calc %.1f "$(lv max_ms)")
LV_SENT=$(lv sent)
LV_LOST=$(lv lost)
LV_RATE=$(calc %.0f "$(lv rate)")
LV_LAG=$(calc %.1f "$(lv lag_ms)")
LV_CPU=$(calc %.1f "$(lv cpu_pct)")
LV_MSPF=$(calc %.2f "1000 * $(lv cpu_s) / $LV_SENT")
LV_HWM=$(calc %.1f "$(lv hwm_kb) / 1024")
read -r _ LV_EMIT LV_UPD _ _ _ _ <<< "$(summary_nums "$LOGS/daemon.log")"
LV_OK="daemon emitted $LV_EMIT ($LV_UPD updates), expected $LIVE_FILES ($LIVE_UPDATES)"
if [ "$LV_EMIT" = "$LIVE_FILES" ]; then LV_OK="$LV_OK: ok"; else LV_OK="$LV_OK: **MISMATCH**"; fi
[ "$KEEP" = 1 ] || { log "removing the backlog corpus"; rm -rf "$M"; }

# ---------------------------------------------------------------- 4. scale

SCALE_ROWS=""
RS100=""
RSS_ALL="$BL_RSS $RS_RSS $LV_HWM"
SD=$WORK/scale
PREV=0
STEP_RSS=""
STEP_MIN=""
STEP_MAX=""
for S in $(printf '%s\n' $SCALE_STEPS | sort -n | uniq); do
    # One corpus grows from step to step (same seed: the first files are the same);
    # each step starts from a fresh state and output.
    [ -d "$SD" ] || make_config "$SD"
    log "scale: growing the corpus to $S files"
    gen "$WORK/scale-$S.gen" --out "$SD/inbox" --n "$S" --skip "$PREV"
    PREV=$S
    SB=$(kv "$WORK/scale-$S.gen" bytes)
    SU=$(kv "$WORK/scale-$S.gen" updates)
    rm -rf "$SD/state" "$SD/out"
    sync
    log "scale: backlog of $S files"
    once "scale-$S-backlog" "$SD"
    read -r _ SE SUPD _ _ _ _ <<< "$(summary_nums "$LOGS/scale-$S-backlog.err")"
    [ "$SE" = "$S" ] && [ "$SUPD" = "$SU" ] || log "warning: scale $S: emitted $SE ($SUPD updates), expected $S ($SU)"
    SW=$(tv_wall "$LOGS/scale-$S-backlog.time")
    SR=$(tv_rss_mib "$LOGS/scale-$S-backlog.time")
    SC=$(tv "$LOGS/scale-$S-backlog.time" 'Percent of CPU this job got')
    log "scale: restart with $S files in the state"
    hyperfine --warmup 1 --runs 3 --export-csv "$LOGS/scale-$S-restart.csv" \
        "$BIN run --once --config $SD/wirewatch.toml" > "$LOGS/scale-$S-restart.hyperfine" 2>&1 ||
        die "scale $S: restart failed"
    SRS=$(hf "$LOGS/scale-$S-restart.csv" mean)
    once "scale-$S-restart" "$SD"
    SRR=$(tv_rss_mib "$LOGS/scale-$S-restart.time")
    # The state file's length, and the blocks it takes (redb grows its file ahead of
    # use, and the part not yet written is a hole).
    SST=$(du -sb "$SD/state" | awk '{ printf "%.1f", $1 / 1048576 }')
    SSD=$(du -sk "$SD/state" | awk '{ printf "%.1f", $1 / 1024 }')
    SOUT=$(stat -c %s "$SD/out/articles.jsonl" | awk '{ printf "%.0f", $1 / 1048576 }')
    [ "$S" = 100000 ] && RS100=$SRS
    RSS_ALL="$RSS_ALL $SR $SRR"
    STEP_RSS="$STEP_RSS${STEP_RSS:+;} $(thousands "$S"): $SR"
    STEP_MAX=$SR
    [ -n "$STEP_MIN" ] || STEP_MIN=$SR
    SCALE_ROWS+="| $(thousands "$S") | $SW | $(thousands "$(calc %.0f "$S / $SW")") | $(calc %.1f "$SB / 1e6 / $SW") | $SC | $SR | $(calc %.3f "$SRS") | $SRR | $SST | $SSD ($(calc %.1f "$SSD * 1048576 / 1000 / $S")) | $SOUT |"$'\n'
done
RSS_MAX=$(printf '%s\n' $RSS_ALL | sort -g | tail -n 1)

# ---------------------------------------------------------------- report

{
    echo "# wirewatch end-to-end benchmark"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit: $COMMIT"
    echo "- command: \`$( [ "$QUICK" = 1 ] && echo "scripts/bench.sh --quick" || echo "scripts/bench.sh")\` (N=$N, RUNS=$RUNS, LIVE_RATE=$LIVE_RATE, LIVE_SECS=$LIVE_SECS, SCALE_STEPS=\"$(echo $SCALE_STEPS)\", SEED=$SEED)"
    echo "- machine: $NPROC CPUs ($(nproc --all) online), $CPU_MODEL; $MEM RAM; $KERNEL; bench folder on $FS"
    echo "- load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- config: workers=$WW_WORKERS (0 = one per CPU), channel_capacity=$WW_CHANNEL_CAPACITY, batch_records=$WW_BATCH_RECORDS, batch_ms=$WW_BATCH_MS, settle_ms=$WW_SETTLE_MS"
    echo "- corpus: $(thousands "$FILES") files, $(calc %.1f "$BYTES / 1e6") MB ($(calc %.0f "$BYTES / $FILES") B/file), $(thousands "$UPDATES") update versions; output $(calc %.1f "$OUT_BYTES / 1e6") MB"
    echo
    echo "| measure | figure | target | |"
    echo "| --- | --- | --- | --- |"
    echo "| backlog: \`run --once\`, $(thousands "$N") files, fresh state | $(calc %.2f "$BL_S") s ± $(calc %.2f "$BL_SD") → **$(thousands "$BL_FPS") files/s**, $BL_MBS MB/s; CPU (one more run, under GNU time: $(calc %.2f "$BL_TW") s) $BL_CPU = $BL_US µs CPU/file | ≥ 7,500 files/s, ≤ 240 µs CPU/file | $(verdict "$BL_FPS >= 7500 && $BL_US <= 240") |"
    echo "| backlog ÷ cat floor (\`find \| xargs cat\`, warm: $(calc %.3f "$CAT_S") s = $(thousands "$(calc %.0f "$N / $CAT_S")") files/s, best $(calc %.3f "$CAT_MIN") s) | **${BL_RATIO}×** | stated | |"
    echo "| backlog peak RSS | $BL_RSS MiB | < 150 MiB | $(verdict "$BL_RSS < 150") |"
    echo "| backlog summary | $BL_EMIT emitted ($BL_UPD updates), $BL_DUP duplicates, $BL_STALE stale, $BL_REJ rejected; $BL_OK | | |"
    echo "| restart: \`run --once\` again, $(thousands "$N") files, nothing new | **$(calc %.3f "$RS_S") s** ± $(calc %.3f "$RS_SD"), peak RSS $RS_RSS MiB; $RS_OK | < 1 s for 100k | $(if [ "$N" -ge 100000 ]; then verdict "$RS_S < 1"; elif [ "$(verdict "$RS_S < 1")" = met ]; then echo "(N < 100k)"; else verdict "$RS_S < 1"; fi) |"
    if [ -n "$RS100" ]; then
        echo "| restart, 100,000 files (scale step) | **$(calc %.3f "$RS100") s** | < 1 s | $(verdict "$RS100 < 1") |"
    fi
    echo "| live: $(thousands "$LV_SENT") files by rename at $LV_RATE/s into the running daemon ($(thousands "$N") articles in state), rename → line readable | p50 $LV_P50 ms, **p99 $LV_P99 ms**, max $LV_MAX ms (dropper's worst lag behind schedule: $LV_LAG ms) | p99 < 20 ms | $(verdict "$LV_P99 < 20") |"
    echo "| live: lost | $LV_LOST; $LV_OK | 0 | $(verdict "$LV_LOST == 0") |"
    echo "| live: daemon CPU (utime+stime, /proc) | $LV_CPU % of one core, $LV_MSPF ms CPU/file; peak RSS $LV_HWM MiB | | |"
    echo "| live: commits (\`/metrics\`, the drops only) | $LV_COMMITS | | |"
    echo "| peak RSS, every run and scale step | max $RSS_MAX MiB | < 150 MiB | $(verdict "$RSS_MAX < 150") |"
    if [ -n "$STEP_MIN" ] && [ "$STEP_MIN" != "$STEP_MAX" ]; then
        echo "| peak RSS of the backlog as N grows (MiB) |$STEP_RSS (×$(calc %.1f "$STEP_MAX / $STEP_MIN")) | flat (≤ ×1.25) | $(verdict "$STEP_MAX / $STEP_MIN <= 1.25") |"
    fi
    if [ -n "$SCALE_ROWS" ]; then
        echo
        echo "Scale: fresh state, \`run --once\` over N files (N articles end up in the state), then a restart."
        echo
        echo "| N | backlog s | files/s | MB/s | CPU | peak RSS MiB | restart s | restart RSS MiB | state MiB | state on disk MiB (KB/file) | output MiB |"
        echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        printf '%s' "$SCALE_ROWS"
    fi
    echo
    echo "Tools: hyperfine $(hyperfine --version | awk '{ print $2 }') (backlog: mean of $RUNS run(s) with \`--prepare 'rm -rf state out'\`; restart: mean of $RESTART_RUNS after 1 warm-up; cat: mean of 10 after 2 warm-ups), GNU time -v (peak RSS, CPU), live_latency (rename → line read; output polled every 1 ms). MB = 10^6 bytes."
} > "$RESULTS"

echo
cat "$RESULTS"
log "results written to ${RESULTS#"$ROOT"/}; raw outputs in ${LOGS#"$ROOT"/}/"
