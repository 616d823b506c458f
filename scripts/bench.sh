#!/usr/bin/env bash
# Runs the standard load scenarios against our broker and against other Kinesis
# implementations (kinesalite and kinesis-local from npm, ferrokinesis from crates.io),
# one at a time, with the same client (target/release/loadtest) and the same settings,
# then writes BENCHMARKS.md and docs/bench/*.svg from the JSON the runs produced.
#
#   scripts/bench.sh                 # all brokers
#   BROKERS="ours kinesalite" scripts/bench.sh
#   DURATION=5 scripts/bench.sh      # seconds of load per scenario (default 8)
#
# Peers install themselves on first use under target/peers (network access to npm and
# crates.io needed once); a peer that cannot be installed or started is reported as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-8}
BROKERS=${BROKERS:-"ours kinesalite kinesis-local ferrokinesis"}
OUT=$ROOT/target/bench
DOCS=$ROOT/docs/bench
PEERS=$ROOT/target/peers
NODE_PREFIX=$PEERS/bench-node
mkdir -p "$OUT" "$DOCS"
rm -f "$OUT"/*.json "$OUT"/*.svg "$OUT"/skipped.txt

cargo build --release --bin loadtest -p kinesis-toolkit
cargo build --release --bin kinesis-broker -p kinesis-broker
LOADTEST=$ROOT/target/release/loadtest

install_peer() {
    case $1 in
    kinesalite | kinesis-local)
        if [ ! -d "$NODE_PREFIX/node_modules/$1" ]; then
            npm install --silent --prefix "$NODE_PREFIX" "$1" >/dev/null
        fi
        ;;
    ferrokinesis)
        if [ ! -x "$PEERS/cargo/bin/ferrokinesis" ]; then
            cargo install --quiet --locked --root "$PEERS/cargo" ferrokinesis
        fi
        ;;
    esac
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts broker $1; sets BROKER_PID and ENDPOINT.
start_broker() {
    local port
    port=$(free_port)
    local log=$OUT/$1.log
    case $1 in
    ours)
        "$ROOT/target/release/kinesis-broker" --port "$port" --limits off --create-delay-ms 0 \
            --update-delay-ms 0 --delete-delay-ms 0 --consumer-delay-ms 0 --log-level warn \
            >"$log" 2>&1 &
        ;;
    kinesalite)
        node "$NODE_PREFIX/node_modules/kinesalite/cli.js" --port "$port" --createStreamMs 0 \
            --shardLimit 10000 >"$log" 2>&1 &
        ;;
    kinesis-local)
        # kinesis-mock (Scala.js) reads server.json from its working directory.
        (cd "$NODE_PREFIX/node_modules/kinesis-local" &&
            KINESIS_MOCK_PLAIN_PORT=$port KINESIS_MOCK_TLS_PORT=$(free_port) \
                CREATE_STREAM_DURATION=0ms LOG_LEVEL=WARN exec node main.js) >"$log" 2>&1 &
        ;;
    ferrokinesis)
        "$PEERS/cargo/bin/ferrokinesis" --port "$port" --create-stream-ms 0 \
            --shard-limit 10000 >"$log" 2>&1 &
        ;;
    esac
    BROKER_PID=$!
    ENDPOINT=http://127.0.0.1:$port
    for _ in $(seq 1 300); do
        if curl -s -o /dev/null -X POST "$ENDPOINT/" \
            -H 'X-Amz-Target: Kinesis_20131202.ListStreams' \
            -H 'Content-Type: application/x-amz-json-1.1' \
            -H 'Authorization: AWS4-HMAC-SHA256 Credential=a/20200101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=x' \
            -H 'X-Amz-Date: 20200101T000000Z' -d '{}'; then
            return 0
        fi
        sleep 0.1
    done
    echo "$1 did not start; see $log" >&2
    return 1
}

stop_broker() {
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
}

# The standard scenarios: name, then loadtest arguments.
SCENARIOS=(
    "ingest|--produce raw --consume none --shards 4 --producers 4 --batch 500 --record-size 100"
    "kpl|--produce kpl --consume none --shards 4 --producers 1 --record-size 100"
    "poll|--produce raw --consume poll --shards 4 --producers 2 --consumers 1 --rate 2000 --record-size 100 --poll-idle-ms 1500"
    "fanout|--produce raw --consume fanout --shards 4 --producers 2 --rate 2000 --record-size 100"
)

for broker in $BROKERS; do
    if [ "$broker" != ours ] && ! install_peer "$broker"; then
        echo "$broker: install failed" >>"$OUT/skipped.txt"
        continue
    fi
    for s in "${SCENARIOS[@]}"; do
        name=${s%%|*}
        args=${s#*|}
        # A fresh broker per scenario: CPU time and peak memory belong to that scenario.
        if ! start_broker "$broker"; then
            echo "$broker: did not start" >>"$OUT/skipped.txt"
            continue 2
        fi
        echo "== $broker / $name"
        # shellcheck disable=SC2086
        if ! timeout 120 "$LOADTEST" --endpoint "$ENDPOINT" --broker-pid "$BROKER_PID" \
            --broker-name "$broker" --name "$broker-$name" --stream "bench-$name" \
            --duration "$DURATION" --limits off --out "$OUT" --quiet $args; then
            echo "$broker: $name failed" >>"$OUT/skipped.txt"
        fi
        stop_broker
    done
done

# The scale curve (ours only): how throughput and CPU per record grow with the shard count
# and with the record size. PutRecords carries at most 500 records and 5 MiB, so large records
# go in smaller batches; a record's data and key together stay within 1 MiB.
if [[ " $BROKERS " == *" ours "* ]] && [ "${SCALE:-1}" != 0 ]; then
    mkdir -p "$OUT/scale"
    rm -f "$OUT/scale"/*.json
    SCALE_DURATION=${SCALE_DURATION:-5}
    scale_run() { # name, then loadtest arguments
        local name=$1
        shift
        start_broker ours || return 1
        echo "== ours / scale $name"
        if ! timeout 180 "$LOADTEST" --endpoint "$ENDPOINT" --broker-pid "$BROKER_PID" \
            --broker-name ours --name "ours-$name" --stream "scale-$name" \
            --duration "$SCALE_DURATION" --limits off --out "$OUT/scale" --quiet --produce raw \
            --consume none --producers 4 "$@"; then
            echo "ours: scale $name failed" >>"$OUT/skipped.txt"
        fi
        stop_broker
    }
    for shards in 1 4 16 64 256 1024; do
        scale_run "shards-$shards" --shards "$shards" --batch 500 --record-size 100
    done
    for size in 100 1024 10240 102400 1048000; do
        batch=$((5 * 1024 * 1024 / (size + 64)))
        [ "$batch" -gt 500 ] && batch=500
        scale_run "size-$size" --shards 4 --batch "$batch" --record-size "$size"
    done
fi

# Enhanced fan-out at 1,000 subscriptions (in process: 250 consumers x 4 shards, 1 MiB/s).
if [ "${SCALE:-1}" != 0 ]; then
    cargo bench --bench fan_out_scale 2>/dev/null >"$OUT/fan_out_scale.txt" ||
        echo "fan_out_scale bench failed" >>"$OUT/skipped.txt"
fi

# The broker's append path in process (no HTTP), for the CPU-per-record target.
cargo bench -p kinesis-broker --bench put_records_overhead 2>/dev/null >"$OUT/put_records_overhead.txt" ||
    echo "put_records_overhead bench failed" >>"$OUT/skipped.txt"
cargo bench -p kinesis-broker --bench get_records 2>/dev/null >"$OUT/get_records.txt" ||
    echo "get_records bench failed" >>"$OUT/skipped.txt"
cargo bench -p kinesis-broker --bench hot_keys 2>/dev/null >"$OUT/hot_keys.txt" ||
    echo "hot_keys bench failed" >>"$OUT/skipped.txt"

rm -f "$DOCS"/*.svg
cp "$OUT"/*.svg "$DOCS"/ 2>/dev/null || true
python3 "$ROOT/scripts/bench_report.py" "$OUT" "$ROOT/BENCHMARKS.md" "docs/bench"
echo "wrote BENCHMARKS.md"
