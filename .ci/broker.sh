# The broker example (examples/broker/) in CI: sourced by .ci/run, which
# calls these functions as steps.
#
#   broker_install   Debian's redis-tools (redis-benchmark, redis-cli), if
#                    missing, as root; jq for dashboard_check
#   broker_smoke     a short redis-benchmark against the broker, in each
#                    buffer mode: every request answered, no error reply,
#                    and no network buffer lost afterwards
#   dashboard_check  a real Prometheus scrapes the broker under load, and
#                    every panel of docs/grafana/magpool.json is evaluated
#                    through its query API, for both of the broker's pools:
#                    each must parse and return data
#
# Each function body runs in a subshell, so its EXIT trap (which stops what
# it started, by PID, and removes its scratch directory) cannot replace the
# caller's. Everything listens on 127.0.0.1 only; every wait is bounded.

# Where cargo puts the examples (CI builds them in the test step too).
BROKER_EXE=${CARGO_TARGET_DIR:-target}/debug/examples/broker

broker_install() ( # apt-get install, bounded; only as root, only if missing
    set -u
    missing=()
    command -v redis-benchmark >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-tools)
    command -v jq >/dev/null || missing+=(jq)
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
            echo "missing ${missing[*]}, and installing Debian's packages needs root and apt-get"
            return 1
        fi
        echo "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get -o DPkg::Lock::Timeout=120 update -qq &&
            DEBIAN_FRONTEND=noninteractive timeout 600 apt-get -o DPkg::Lock::Timeout=120 install -y -qq \
                --no-install-recommends "${missing[@]}" >/dev/null || return 1
    fi
    redis-benchmark --version && redis-cli --version && jq --version
)

# broker_start MODE DIR LOG [FLAGS...]: starts `broker serve` in the
# background on a port the kernel picks; sets BROKER_PID and BROKER_PORT
# (and METRICS_ADDR with --metrics-addr). Call it in the calling shell,
# not a subshell, so the caller's trap knows the PID.
broker_start() {
    local mode=$1 dir=$2 log=$3 i
    shift 3
    "$BROKER_EXE" serve --addr 127.0.0.1:0 --mode "$mode" --dir "$dir" "$@" >"$log" 2>&1 &
    BROKER_PID=$!
    BROKER_PORT="" METRICS_ADDR=""
    for i in $(seq 100); do
        BROKER_PORT=$(sed -n 's#^broker: listening on 127\.0\.0\.1:\([0-9]*\) .*#\1#p' "$log")
        METRICS_ADDR=$(sed -n 's#^broker: metrics at http://\(.*\)/metrics$#\1#p' "$log")
        [ -n "$BROKER_PORT" ] && break
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$BROKER_PORT" ] || { echo "the $mode broker did not start:"; cat "$log"; return 1; }
    echo "broker ($mode): 127.0.0.1:$BROKER_PORT (pid $BROKER_PID)"
}

# broker_bench PORT N ARGS...: redis-benchmark, bounded; fails unless it
# exits 0, prints no error, and completes at least N requests in every test.
broker_bench() {
    local port=$1 n=$2 out tests short
    shift 2
    out=$(timeout 120 redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" "$@" 2>&1) ||
        { echo "redis-benchmark $* failed:"; echo "$out" | tr '\r' '\n' | tail -n 5; return 1; }
    out=$(echo "$out" | tr '\r' '\n')
    if echo "$out" | grep -qi 'error'; then
        echo "redis-benchmark $*: an error reply:"; echo "$out" | grep -i error | head -n 5; return 1
    fi
    tests=$(echo "$out" | grep -c '^====== ')
    short=$(echo "$out" | awk -v n="$n" '/ requests completed in /{ if ($1 < n) print }')
    [ "$tests" -gt 0 ] && [ -z "$short" ] ||
        { echo "redis-benchmark $*: not every request answered:"; echo "$out" | grep -E '^=|completed'; return 1; }
    echo "$out" | awk '/^====== /{name=$0} /throughput summary/{print "  " name " " $3 " requests/s"}'
}

# broker_info PORT KEY: one field of INFO.
broker_info() {
    timeout 10 redis-cli -h 127.0.0.1 -p "$1" INFO | tr -d '\r' | sed -n "s/^$2://p"
}

broker_smoke() (
    set -u
    SMOKE_DIR=$(mktemp -d) BROKER_PID=""
    trap 'if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null; fi; rm -rf "$SMOKE_DIR"' EXIT
    [ -x "$BROKER_EXE" ] || timeout 900 cargo build --locked --example broker || return 1
    for mode in magpool bytesmut; do
        broker_start "$mode" "$SMOKE_DIR/$mode" "$SMOKE_DIR/$mode.log" || return 1
        port=$BROKER_PORT
        broker_bench "$port" 2000 -c 20 -P 8 -r 500 -d 512 -t ping,set,get || return 1
        broker_bench "$port" 50 -c 2 -d 1048576 -r 10 -t set,get || return 1
        broker_bench "$port" 2000 -c 20 -P 8 XADD smoke-stream '*' field value || return 1
        broker_bench "$port" 2000 -c 20 -P 8 -r 2000 XRANGE smoke-stream __rand_int__ + COUNT 5 || return 1
        # By hand, as a person would: redis-cli against it.
        [ "$(timeout 10 redis-cli -p "$port" SET smoke-key "hello world")" = OK ] || { echo "SET by redis-cli"; return 1; }
        [ "$(timeout 10 redis-cli -p "$port" GET smoke-key)" = "hello world" ] || { echo "GET by redis-cli"; return 1; }
        reply=$(timeout 10 redis-cli -p "$port" NOSUCHCOMMAND 2>&1)
        case $reply in *"unknown command"*) ;; *) echo "unknown command: got $reply"; return 1 ;; esac
        commands=$(broker_info "$port" total_commands_processed)
        [ "${commands:-0}" -ge 8100 ] || { echo "the server counted ${commands:-0} requests, expected 8100+"; return 1; }
        if [ "$mode" = magpool ]; then
            # Every client has left: only INFO's own connection holds
            # buffers of the network pool (its request and reply buffers).
            for i in $(seq 50); do
                in_use=$(broker_info "$port" net_in_use)
                [ "$in_use" = 2 ] && break
                sleep 0.1
            done
            [ "$in_use" = 2 ] || { echo "net_in_use stays at $in_use with no client but INFO's: a buffer was lost"; return 1; }
            echo "  idle: net_in_use 2 (INFO's own connection), store_in_use $(broker_info "$port" store_in_use)"
        fi
        kill -0 "$BROKER_PID" || { echo "the $mode broker died:"; tail -n 20 "$SMOKE_DIR/$mode.log"; return 1; }
        kill "$BROKER_PID" && wait "$BROKER_PID" 2>/dev/null
        BROKER_PID=""
        echo "broker ($mode): $commands requests answered, none with an error"
    done
)

dashboard_check() (
    set -u
    DASH_DIR=$(mktemp -d) BROKER_PID="" DASH_PROM="" DASH_LOAD=""
    trap 'for p in $DASH_LOAD $DASH_PROM $BROKER_PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; rm -rf "$DASH_DIR"' EXIT
    local_dashboard=docs/grafana/magpool.json
    for tool in prometheus promtool curl jq redis-benchmark; do
        command -v "$tool" >/dev/null || { echo "$tool is missing (broker_install, install_prometheus)"; return 1; }
    done
    # Importable as is: valid JSON, a uid, panels with a PromQL target each,
    # and no import-time input (${DS_...}) left to resolve.
    jq -e '.uid and .title and (.panels | length >= 9) and all(.panels[]; (.targets | length) >= 1 and all(.targets[]; .expr | length > 0))' \
        "$local_dashboard" >/dev/null || { echo "$local_dashboard: not a dashboard with a PromQL target per panel"; return 1; }
    ! grep -q '${DS_' "$local_dashboard" || { echo "$local_dashboard needs import-time inputs"; return 1; }
    [ -x "$BROKER_EXE" ] || timeout 900 cargo build --locked --example broker || return 1

    broker_start magpool "$DASH_DIR/logs" "$DASH_DIR/broker.log" --metrics-addr 127.0.0.1:0 || return 1
    [ -n "$METRICS_ADDR" ] || { echo "no metrics address:"; cat "$DASH_DIR/broker.log"; return 1; }
    echo "metrics: http://$METRICS_ADDR/metrics"
    # OpenMetrics, whole (the metrics example's step lints the classic format).
    [ "$(curl -sS --max-time 5 "http://$METRICS_ADDR/metrics" | tail -n 1)" = "# EOF" ] ||
        { echo "/metrics: no OpenMetrics # EOF"; return 1; }
    # Load for the whole check, so that every rate has something to show;
    # bounded by its own timeout, and stopped by PID at the end.
    timeout 120 redis-benchmark -h 127.0.0.1 -p "$BROKER_PORT" -l -q -c 8 -P 4 -r 200 -d 700 -t set,get \
        >/dev/null 2>&1 &
    DASH_LOAD=$!

    port=""
    for p in $(shuf -i 20000-59999 -n 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { port=$p; break; }
    done
    [ -n "$port" ] || { echo "no free loopback port"; return 1; }
    cat >"$DASH_DIR/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: broker
    static_configs:
      - targets: ["$METRICS_ADDR"]
YAML
    promtool check config "$DASH_DIR/prometheus.yml" >/dev/null || return 1
    prometheus --config.file="$DASH_DIR/prometheus.yml" --storage.tsdb.path="$DASH_DIR/tsdb" \
        --web.listen-address="127.0.0.1:$port" >"$DASH_DIR/prometheus.log" 2>&1 &
    DASH_PROM=$!
    echo "prometheus: http://127.0.0.1:$port (pid $DASH_PROM)"
    api="http://127.0.0.1:$port/api/v1"
    # Wait for rates: at least a few scrapes of a loaded server.
    ready=""
    for i in $(seq 40); do
        kill -0 "$DASH_PROM" 2>/dev/null || { echo "prometheus exited:"; tail -n 20 "$DASH_DIR/prometheus.log"; return 1; }
        answer=$(curl -sG --max-time 2 "$api/query" --data-urlencode 'query=rate(magpool_buffer_gets_total[10s]) > 0')
        # (jq 1.6 exits 0 on empty input, even with -e: test for it first.)
        if [ -n "$answer" ] && echo "$answer" | jq -e '.data.result | length > 0' >/dev/null 2>&1; then
            ready=yes
            break
        fi
        sleep 1
    done
    [ -n "$ready" ] || { echo "no rate after 40 s"; tail -n 20 "$DASH_DIR/prometheus.log"; return 1; }

    # Every panel's expression, as Grafana would send it: the variables at
    # "All" (.*), the rate interval at 10s (4 scrapes), for each pool.
    failed=0 checked=0
    while IFS=$'\t' read -r title expr; do
        for pool in magpool store_magpool; do
            q=${expr//'${pool}'/$pool}
            q=${q//'$__rate_interval'/10s}
            q=${q//'$job'/.*}
            q=${q//'$instance'/.*}
            answer=$(curl -sG --max-time 5 "$api/query" --data-urlencode "query=$q")
            series=$(echo "${answer:-null}" |
                jq -r 'if .status == "success" then (.data.result | length) else "error: \(.error)" end' 2>&1)
            checked=$((checked + 1))
            if [[ "$series" =~ ^[1-9][0-9]*$ ]]; then
                printf '  ok   %-36s %-14s %3s series\n' "$title" "$pool" "$series"
            else
                printf '  FAIL %-36s %-14s %s\n        %s\n' "$title" "$pool" "$series" "$q"
                failed=$((failed + 1))
            fi
        done
    done < <(jq -r '.panels[] | .title as $t | .targets[] | [$t, .expr] | @tsv' "$local_dashboard")
    # The variables' own queries: label_values(metric, label) is Grafana's;
    # ask Prometheus for the same series.
    for pool in magpool store_magpool; do
        answer=$(curl -sG --max-time 5 "$api/series" --data-urlencode "match[]=${pool}_buffer_gets_total")
        echo "${answer:-null}" | jq -e '.data | length > 0 and all(.[]; .job and .instance)' >/dev/null ||
            { echo "  FAIL variables: no ${pool}_buffer_gets_total series with job and instance"; failed=$((failed + 1)); }
    done
    echo "dashboard: $checked panel queries, $failed failed"
    [ "$failed" -eq 0 ]
)
