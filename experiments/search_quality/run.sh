#!/usr/bin/env bash
# Issue 9's measurements on 2 CPU cores (see README.md here for the figures and how to read them).
# Every command is the project's own (enas-beats-random, enas-rank-check, enas-search, ...);
# this file only records them in the order they ran. OUT holds the runs (not committed).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
OUT=${OUT:-/tmp/sq}
CIFAR=${CIFAR:-/tmp/cifar10_batches}
export OMP_NUM_THREADS=1
mkdir -p "$OUT"

# 0. CIFAR-10 (the JPEG copy in ../shared/data) decoded once into python batches.
[ -d "$CIFAR/cifar-10-batches-py" ] || $BIN/python -m experiments.search_quality.jpeg_to_batches \
    ../shared/data/cifar10_jpeg/cifar10_jpeg_q75.tar.gz "$CIFAR"

TASK=(experiment=quality_cifar_macro data.path=$CIFAR)
POOL=(num_random=12 'train_seeds=[0,1,2,3,4,5]' average=3)

# 1. Ground truth: 12 uniformly drawn macro networks x 6 training seeds; a measurement is the mean
#    of 3 trainings, the noise ceiling the tau between the two measurements. Shared by every setting.
$BIN/enas-beats-random "${TASK[@]}" 'seeds=[]' "${POOL[@]}" out_dir=$OUT/pool

# 2. REINFORCE (paper settings) and random search with weight sharing, 3 seeds each, same budget.
link_pool() { mkdir -p "$1" && ln -sfn "$(realpath $OUT/pool/random)" "$1/random"; }
link_pool $OUT/macro_main
$BIN/enas-beats-random "${TASK[@]}" 'strategies=[reinforce,random]' 'seeds=[0,1,2]' "${POOL[@]}" \
    out_dir=$OUT/macro_main

# 3. Settings, REINFORCE only: before the fidelity fixes (issue 9 section 1, the macro points), and
#    each section-3 option on.
setting() {
    local name=$1; shift
    link_pool $OUT/$name
    $BIN/enas-beats-random "${TASK[@]}" 'strategies=[reinforce]' "seeds=${SEEDS:-[0,1]}" "${POOL[@]}" \
        out_dir=$OUT/$name "$@"
}
setting before_fixes controller.skip_pair=false controller.skip_penalty=sum controller.adam_beta1=0.9 \
    controller.adam_eps=1.0e-8 space.sizes.branch_conv1x1=false
setting warmup search.warmup_epochs=3
setting fair search.fair_sampling=true
setting reward_batches evaluator.options.batches_per_reward=4

# 4. One-shot tau: each search's supernet against the same pool (the same 12 draws, seed 0).
for search in $OUT/*/*-seed*/search; do
    ln -sfn "$(realpath $OUT/pool/random)" "$search/rank_check_runs"
    $BIN/enas-rank-check run_dir=$search num_archs=12 seed=0 'ground_truth.seeds=[0,1,2,3,4,5]' \
        ground_truth.average=3 || echo "rank check failed: $search"
done
$BIN/python -m experiments.search_quality.table $OUT > experiments/search_quality/table.md
