#!/usr/bin/env bash
# Runs each loom mutant on the model that must catch it; prints one line per
# mutant and exits non-zero if any mutant survives (its model passes).
# Usage: bash loom-tests/mutants.sh   (from the repository root; ~10 minutes)
set -u
cd "$(dirname "$0")"
pairs=(
    "depot_pop_relaxed spill_races_refill"
    "depot_push_lost_on_conflict exchange_both_ways"
    "depot_pop_unpinned stack_push_pop_reclaims"
    "depot_recycle_early stack_push_pop_reclaims"
    "depot_push_stale_next exit_flush_races_refill"
    "depot_limit_check_then_add trim_and_limit_race_spill"
    "stats_gets_first stats_read_while_running"
    "slots_publish_relaxed publish_walk_and_claim"
    "reclaim_no_barrier idle_thread_hand_off"
    "reclaim_ignores_busy idle_thread_hand_off"
    "settle_loads idle_thread_hand_off"
    "remember_after_settle idle_thread_hand_off_cold_hint"
    "depot_reclaim_uncounted depot_reclaim_races_spill_and_refill"
    "drop_inside_access reentrant_drop"
    "depot_pop_relaxed object_hand_off"
)
survivors=0
for pair in "${pairs[@]}"; do
    set -- $pair
    out=$(RUSTFLAGS="--cfg loom --cfg crossbeam_loom --cfg magpool_mutant=\"$1\"" \
        CARGO_TARGET_DIR=../target/loom-mutant cargo test --release --locked "$2" 2>&1)
    if echo "$out" | grep -q '^test result: ok'; then
        echo "SURVIVED $1 ($2 passed)"
        survivors=$((survivors + 1))
    else
        why=$(echo "$out" | grep -m1 -E 'Causality violation|panicked at|assertion|double free|index out of bounds|already' -A1 | tr '\n' ' ')
        echo "caught   $1 by $2: ${why:0:160}"
    fi
done
echo "mutants: $((${#pairs[@]} - survivors)) caught, $survivors survived"
[ "$survivors" -eq 0 ]
