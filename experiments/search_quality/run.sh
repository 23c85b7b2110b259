#!/usr/bin/env bash
# Issue 9's measurements on 2 CPU cores (README.md here has the figures and how to read them).
# Every step is one of the project's commands; this file records them. OUT holds the runs (not
# committed). In this session the steps ran 2-4 at a time in the background; README.md says
# where a run was interrupted and finished differently.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$PWD/.venv/bin
OUT=${OUT:-/tmp/sq}
CIFAR=${CIFAR:-/tmp/cifar10_batches}
export OMP_NUM_THREADS=1
mkdir -p "$OUT"

# 0. CIFAR-10 (the JPEG copy in ../shared/data) decoded once into python batches.
[ -d "$CIFAR/cifar-10-batches-py" ] || $BIN/python -m experiments.search_quality.jpeg_to_batches \
    ../shared/data/cifar10_jpeg/cifar10_jpeg_q75.tar.gz "$CIFAR"

# Every step below ran before `controller.entropy_mode` existed, with the entropy term in the loss;
# the paper presets now add the bonus to the reward (the official form), so OLD keeps the runs as run.
OLD=(controller.entropy_mode=loss)
# The micro searches of steps 10-15 derived with the shared weights, the quality_cifar_micro preset's
# derive until section 9 (now 20 inherited steps ranked by loss); MOLD keeps their derive as run.
MOLD=(derive.estimator=search derive.steps=null derive.recalibrate_bn=null derive.rank_by=score)
TASK=(experiment=quality_cifar_macro data.path=$CIFAR "${OLD[@]}")
POOL=(num_random=12 'train_seeds=[0,1,2,3,4,5]' average=3)

# 1. Ground truth: 12 uniformly drawn macro networks x 6 training seeds; a measurement is the mean
#    of 3 trainings, the noise ceiling the tau between the two measurements. Shared by every run.
$BIN/enas-beats-random "${TASK[@]}" 'seeds=[]' "${POOL[@]}" out_dir=$OUT/pool

# 2. One out_dir per group of search runs, each with the pool linked in (reused, not retrained).
beats_random() {   # name strategy seeds [overrides...]
    local name=$1 strategy=$2 seeds=$3; shift 3
    mkdir -p $OUT/$name && ln -sfn "$(realpath $OUT/pool/random)" $OUT/$name/random
    $BIN/enas-beats-random "${TASK[@]}" "strategies=[$strategy]" "seeds=$seeds" "${POOL[@]}" workers=1 \
        out_dir=$OUT/$name "$@"
}
# REINFORCE (paper settings) and random search with weight sharing at the same budget
beats_random main_reinforce reinforce '[0,1,2]'
beats_random main_random random '[0,1,2]'
# REINFORCE before the fidelity fixes (the macro points of issue 9 section 1), and each section-3 option
beats_random before_fixes reinforce '[0]' controller.skip_pair=false controller.skip_penalty=sum \
    controller.adam_beta1=0.9 controller.adam_eps=1.0e-8 space.sizes.branch_conv1x1=false
beats_random warmup reinforce '[0]' search.warmup_epochs=3
beats_random fair reinforce '[0]' search.fair_sampling=true
# second session: warm-up on two more seeds; reward variance reduction (common validation batches
# for the architectures of one update, leave-one-out batch-mean baseline) on three
beats_random warmup_s12 reinforce '[1,2]' search.warmup_epochs=3
# (its derived trainings broke: enas/parallel.py changed under the running command, and the new
# workers could not unpickle the old initializer; the two searches were placed instead with
#   python -m experiments.search_quality.place_derived $OUT/pool $OUT/warmup_s12/reinforce-seed{1,2}/search \
#       --workers 1 > $OUT/warmup_s12/placed.jsonl    after moving its beats_random.json/.md aside)
beats_random variance_reduction reinforce '[0,1,2]' controller.baseline=batch_mean \
    evaluator.options.shared_batches=true
# 4 validation batches per reward (the first session had no time for it); the searches run one
# after the other: stopped for time in seed 1's third epoch, seed 0 placed with place_derived.py
beats_random reward_batches reinforce '[0,1]' evaluator.options.batches_per_reward=4 workers=2
# third session (each search from a snapshot of the code, PYTHONPATH=<git worktree>, so that edits
# could not reach a running pool): FairNAS and 4 batches per reward on more seeds; a 4x longer
# uniform supernet training; few-shot supernets (split on layer0_op at the start of epoch 4)
beats_random fair_s12 reinforce '[1,2]' search.fair_sampling=true
beats_random reward_batches_s1 reinforce '[1]' evaluator.options.batches_per_reward=4
beats_random long_uniform random '[0]' search.epochs=40 search.strategy_steps=1
FEW_SHOT=(search.few_shot.decision=layer0_op search.few_shot.split_epoch=3)
beats_random few_shot_random random '[0]' "${FEW_SHOT[@]}"
beats_random few_shot_random_s12 random '[1,2]' "${FEW_SHOT[@]}"
beats_random few_shot reinforce '[0,1,2]' "${FEW_SHOT[@]}"

# 3. One-shot tau: each search's supernet against the same pool (the same 12 draws: seed 0).
for search in $OUT/*/*-seed*/search; do
    ln -sfn "$(realpath $OUT/pool/random)" $search/rank_check_runs
    $BIN/enas-rank-check run_dir=$search num_archs=12 seed=0 'ground_truth.seeds=[0,1,2,3,4,5]' \
        ground_truth.average=3 ground_truth.workers=1 one_shot.valid_images=1000
done
$BIN/python -m experiments.search_quality.table $OUT > experiments/search_quality/table.md
# the same rank checks with the whole validation split (2,000 images) for the one-shot scores;
# rank_check_2000.json beside each search's rank_check.json (which keeps the 1,000-image check)
for search in $OUT/*/*-seed*/search; do
    cp $search/rank_check.json $search/rank_check_1000.json
    $BIN/enas-rank-check run_dir=$search num_archs=12 seed=0 'ground_truth.seeds=[0,1,2,3,4,5]' \
        ground_truth.average=3 ground_truth.workers=1 one_shot.valid_images=null
    mv $search/rank_check.json $search/rank_check_2000.json
    mv $search/rank_check_1000.json $search/rank_check.json
done
# third session: the pool extended to 24 architectures (the first 12 draws are the same and are
# reused), and each search's rank check on all 24 (rank_check_24.json; its own noise ceiling)
mkdir -p $OUT/pool24 && ln -sfn "$(realpath $OUT/pool/random)" $OUT/pool24/random
$BIN/enas-beats-random "${TASK[@]}" 'seeds=[]' num_random=24 'train_seeds=[0,1,2,3,4,5]' average=3 workers=2 \
    out_dir=$OUT/pool24    # (started with workers=1, stopped after 5 trainings and continued with 2)
for search in $OUT/*/*-seed*/search; do
    for f in rank_check.json rank_check.md rank_check.png; do cp $search/$f $search/$f.keep12; done
    $BIN/enas-rank-check run_dir=$search num_archs=24 seed=0 'ground_truth.seeds=[0,1,2,3,4,5]' \
        ground_truth.average=3 ground_truth.workers=1 one_shot.valid_images=null
    for f in json md png; do mv $search/rank_check.$f $search/rank_check_24.$f; mv $search/rank_check.$f.keep12 \
        $search/rank_check.$f; done
done
# what one-shot scores and the ground truth reward (tau with the pool and skip counts)
$BIN/python -m experiments.search_quality.op_bias $OUT > experiments/search_quality/op_bias.md

# 4. PTB small: does the controller learn (entropy), and does the derived cell beat 5 random cells?
P=$OUT/ptb
# the official controller recipe (lr 1e-3 x5 here, temperature 5): stopped after 2 of 6 epochs
$BIN/enas-search experiment=enas_ptb_small "${OLD[@]}" hydra.run.dir=$P/search_official search.epochs=6 \
    search.omega_steps=100 search.strategy_steps=50 controller.lr=0.005 || true
# a faster controller for a CPU budget: temperature 1, lr 0.01
$BIN/enas-search experiment=enas_ptb_small "${OLD[@]}" hydra.run.dir=$P/search search.epochs=4 \
    search.omega_steps=100 search.strategy_steps=50 controller.lr=0.01 controller.temperature=1.0
$BIN/enas-derive run_dir=$P/search num_samples=10 valid_batches=4
SHORT=(trainer.epochs=1 trainer.steps_per_epoch=150 trainer.log_every=50)
$BIN/enas-beats-random experiment=enas_ptb_small 'seeds=[]' num_random=5 'train_seeds=[0]' workers=1 \
    "${SHORT[@]}" out_dir=$P/pool
$BIN/enas-train arch=$P/search/arch.json experiment=enas_ptb_small seed=0 "${SHORT[@]}" hydra.run.dir=$P/derived
# second session: reward variance reduction and a smaller entropy bonus (1e-4; official PTB 1e-3)
VR=(controller.baseline=batch_mean evaluator.options.shared_batches=true)
CTRL=(search.omega_steps=100 search.strategy_steps=100 controller.lr=0.01 controller.temperature=1.0)
$BIN/enas-search experiment=enas_ptb_small "${OLD[@]}" hydra.run.dir=$P/search_vr search.epochs=4 "${CTRL[@]}" \
    "${VR[@]}" || true      # entropy bonus 1e-3: stopped after 2.2 epochs, the entropy rising
$BIN/enas-search experiment=enas_ptb_small "${OLD[@]}" hydra.run.dir=$P/search_vr_e4 search.epochs=4 "${CTRL[@]}" \
    "${VR[@]}" controller.entropy_weight=0.0001
$BIN/enas-search experiment=enas_ptb_small "${OLD[@]}" hydra.run.dir=$P/search_e4_novr search.epochs=2 "${CTRL[@]}" \
    controller.entropy_weight=0.0001                # the same without variance reduction (2 epochs)
$BIN/enas-derive run_dir=$P/search_vr_e4 num_samples=10 valid_batches=4
$BIN/enas-train arch=$P/search_vr_e4/arch.json experiment=enas_ptb_small seed=0 "${SHORT[@]}" \
    hydra.run.dir=$P/derived_vr
# the same search derived again on the preset's 20 validation batches (a copy of the run dir)
mkdir -p $P/search_vr_e4_d20 && cp -r $P/search_vr_e4/. $P/search_vr_e4_d20/ && rm -f $P/search_vr_e4_d20/arch.*
$BIN/enas-derive run_dir=$P/search_vr_e4_d20 num_samples=30 valid_batches=20
$BIN/enas-train arch=$P/search_vr_e4_d20/arch.json experiment=enas_ptb_small seed=0 "${SHORT[@]}" \
    hydra.run.dir=$P/derived_vr_d20
$BIN/python -m experiments.search_quality.entropy_curve $P/search_vr $P/search_vr_e4 $P/search_e4_novr \
    --names "VR, entropy bonus 1e-3" "VR, entropy bonus 1e-4" "no VR, entropy bonus 1e-4" \
    --png experiments/search_quality/ptb_entropy.png > experiments/search_quality/ptb_entropy.md

# 5. Fourth session: which estimator ranks the pool? (README section 2c) The 24-architecture pool
#    trained again in a fresh /tmp (the same command as in step 3), six new supernets (the preset's
#    search with REINFORCE and with random search, seeds 0-2), each scored by the one-shot
#    estimator, by 78 training steps (one pass) from its weights (inherit) and from scratch
#    (standalone, the baseline), and by 10, 20 and 40 steps; one report per estimator (report=...),
#    all against the same pool trainings. (The 78-step reports are named inherit79/standalone79:
#    79 was asked, one pass is 78 batches, and the command cut it with a warning.)
$BIN/enas-beats-random "${TASK[@]}" 'seeds=[]' num_random=24 'train_seeds=[0,1,2,3,4,5]' average=3 workers=2 \
    out_dir=$OUT/pool24
S4=$OUT/s4
for seed in 0 1 2; do
    for strategy in reinforce random; do
        $BIN/enas-search "${TASK[@]}" strategy=$strategy seed=$seed hydra.run.dir=$S4/${strategy}_s$seed
    done
done
rank_check() {   # run_dir report [estimator options...]
    $BIN/enas-rank-check run_dir=$1 report=$2 num_archs=24 seed=0 'ground_truth.seeds=[0,1,2,3,4,5]' \
        ground_truth.average=3 ground_truth.workers=2 "${@:3}"
}
for search in $S4/*_s?; do
    ln -sfn "$(realpath $OUT/pool24/random)" $search/rank_check_runs
    rank_check $search rank_check_24
    rank_check $search inherit79 estimator.name=inherit estimator.steps=79
    rank_check $search standalone79 estimator.name=standalone estimator.steps=79
    rank_check $search inherit20 estimator.name=inherit estimator.steps=20
    rank_check $search standalone20 estimator.name=standalone estimator.steps=20
    rank_check $search inherit10 estimator.name=inherit estimator.steps=10
    rank_check $search inherit40 estimator.name=inherit estimator.steps=40
done
for search in $S4/random_s?; do     # standalone reads no supernet: one set of seeds is enough
    rank_check $search standalone10 estimator.name=standalone estimator.steps=10
    rank_check $search standalone40 estimator.name=standalone estimator.steps=40
done
$BIN/python -m experiments.search_quality.estimators $S4 rank_check_24 inherit10 standalone10 inherit20 \
    standalone20 inherit40 standalone40 inherit79 standalone79 > experiments/search_quality/estimators.md
for report in rank_check_24 inherit10 standalone10 inherit20 standalone20 inherit40 inherit79 standalone79; do
    echo "### $report"; $BIN/python -m experiments.search_quality.op_bias $S4 --runs '*_s?' --check $report.json; echo
done    # (with a title line: experiments/search_quality/op_bias_estimators.md)
# the derived architectures of the three one-shot REINFORCE supernets, placed in this pool
for s in 0 1 2; do $BIN/enas-derive run_dir=$S4/reinforce_s$s; done
$BIN/python -m experiments.search_quality.place_derived $OUT/pool24 $S4/reinforce_s0 $S4/reinforce_s1 \
    $S4/reinforce_s2 --workers 1 > $S4/placed.jsonl
# a search whose reward is 10 steps from the shared weights (evaluator=inherit); seed 1 stopped for
# time after seed 0's search, derive and training; seed 0 placed in the pool with place_derived.py
mkdir -p $OUT/inherit_search && ln -sfn "$(realpath $OUT/pool24/random)" $OUT/inherit_search/random
$BIN/enas-beats-random "${TASK[@]}" 'strategies=[reinforce]' 'seeds=[0,1]' num_random=24 \
    'train_seeds=[0,1,2,3,4,5]' average=3 workers=2 out_dir=$OUT/inherit_search evaluator=inherit \
    evaluator.options.steps_per_epoch=10 evaluator.options.valid_batches=1 evaluator.options.workers=2 || true
$BIN/python -m experiments.search_quality.place_derived $OUT/pool24 $OUT/inherit_search/reinforce-seed0/search \
    --workers 2 > $OUT/inherit_search/placed.jsonl

# 6. Fifth session: derive with a better estimator, and BN recalibration of short trainings
#    (README section 2d). The pool trained again (the command of step 5, a fresh /tmp); three
#    one-shot REINFORCE searches and two REINFORCE searches rewarded by 10 inherited steps
#    (evaluator workers 1: two searches ran side by side; seed 2 dropped for time), each derived
#    with the shared weights and with 20 inherited steps per candidate (the inherit searches also
#    with their own estimator); every pick placed in the pool; rank checks of the one-shot
#    supernets with inherited steps, with and without BN recalibration.
$BIN/enas-beats-random "${TASK[@]}" 'seeds=[]' num_random=24 'train_seeds=[0,1,2,3,4,5]' average=3 workers=2 \
    out_dir=$OUT/pool24
S5=$OUT/s5
pick() {    # run_dir name [derive options...]: derive, keep the pick in <run_dir>/pick_<name>/
    $BIN/enas-derive run_dir=$1 "${@:3}" && mkdir -p $1/pick_$2 && cp $1/arch.json $1/pick_$2/
}
for seed in 0 1 2; do
    $BIN/enas-search "${TASK[@]}" strategy=reinforce seed=$seed hydra.run.dir=$S5/reinforce_s$seed
    pick $S5/reinforce_s$seed one_shot
    pick $S5/reinforce_s$seed inherit20 estimator=inherit steps=20
done
for seed in 0 1; do
    $BIN/enas-search "${TASK[@]}" strategy=reinforce seed=$seed evaluator=inherit evaluator.options.steps_per_epoch=10 \
        evaluator.options.valid_batches=1 evaluator.options.workers=1 hydra.run.dir=$S5/inherit_s$seed
    pick $S5/inherit_s$seed own                     # the search's own estimator: 10 inherited steps
    pick $S5/inherit_s$seed inherit20 estimator=inherit steps=20
done
pick $S5/inherit_s0 one_shot estimator=one_shot
$BIN/python -m experiments.search_quality.place_derived $OUT/pool24 $S5/*_s?/pick_* --workers 2 > $S5/placed.jsonl
for s in 0 1 2; do
    search=$S5/reinforce_s$s
    ln -sfn "$(realpath $OUT/pool24/random)" $search/rank_check_runs
    rank_check $search rank_check_24
    rank_check $search inherit20 estimator.name=inherit estimator.steps=20
    rank_check $search inherit20bn estimator.name=inherit estimator.steps=20 estimator.recalibrate_bn=20
    rank_check $search inherit10bn estimator.name=inherit estimator.steps=10 estimator.recalibrate_bn=20
done
for s in 0 1 2; do      # after the rank checks showed what recalibration does: derive with it too
    pick $S5/reinforce_s$s inherit20bn estimator=inherit steps=20 recalibrate_bn=20
    $BIN/python -m experiments.search_quality.place_derived $OUT/pool24 $S5/reinforce_s$s/pick_inherit20bn \
        --workers 2 >> $S5/placed.jsonl
done
$BIN/python -m experiments.search_quality.estimators $S5 rank_check_24 inherit20 inherit20bn inherit10bn \
    --pair inherit20bn:inherit20 --pair inherit20:rank_check_24 --pair inherit10bn:rank_check_24 \
    > experiments/search_quality/estimators_bn.md
$BIN/python -m experiments.search_quality.picks $S5/placed.jsonl > experiments/search_quality/picks.md

# 7. Sixth session: more seeds (README section 2e). Three more one-shot REINFORCE supernets
#    (seeds 3-5) and four one-shot random-search supernets (seeds 0-3) with the preset, each derived
#    by its shared weights and by 20 inherited steps with BN recalibration, every pick placed in
#    the pool of step 6; rank checks of each supernet (one-shot, inherit 20 + recalibration);
#    the mean of 2 recalibrated inherit estimates on the supernets of step 6 (estimator.repeats=2,
#    after the fix that gives each repeat its own batch order). Everything in $OUT/s6, collected
#    with the runs of step 6 in $OUT/all (links), so the tables cover every supernet.
S6=$OUT/s6
mkdir -p $OUT/all
for s in 0 1 2; do ln -sfn "$(realpath $S5/reinforce_s$s)" $OUT/all/reinforce_s$s; done
for run in reinforce_s3 reinforce_s4 reinforce_s5 random_s0 random_s1 random_s2 random_s3; do
    strategy=${run%_s*} seed=${run##*_s}
    $BIN/enas-search "${TASK[@]}" strategy=$strategy seed=$seed hydra.run.dir=$S6/$run
    pick $S6/$run one_shot
    pick $S6/$run inherit20bn estimator=inherit steps=20 recalibrate_bn=20
    $BIN/python -m experiments.search_quality.place_derived $OUT/pool24 $S6/$run/pick_one_shot \
        $S6/$run/pick_inherit20bn --workers 1 >> $S6/placed.jsonl
    ln -sfn "$(realpath $OUT/pool24/random)" $S6/$run/rank_check_runs
    rank_check $S6/$run rank_check_24
    rank_check $S6/$run inherit20bn estimator.name=inherit estimator.steps=20 estimator.recalibrate_bn=20
    ln -sfn "$(realpath $S6/$run)" $OUT/all/$run
done
for s in 0 1 2; do
    rank_check $S5/reinforce_s$s inherit20bnx2 estimator.name=inherit estimator.steps=20 estimator.recalibrate_bn=20 \
        estimator.repeats=2
done
# the inherit20bn rank checks made before the rows kept the loss, run again (same scores to the
# last digit) so that estimators.py --loss covers every supernet
for run in $S5/reinforce_s0 $S5/reinforce_s1 $S5/reinforce_s2 $S6/reinforce_s3 $S6/reinforce_s4 $S6/random_s1; do
    rank_check $run inherit20bn estimator.name=inherit estimator.steps=20 estimator.recalibrate_bn=20
done
# derives ranked by validation loss (enas-derive rank_by=loss), each on a copy of the search's
# checkpoint: one-shot on 4 supernets (stopped for time when it did worse), inherit 20 + recalibration on all
derive_copy() {  # run folder pick [derive options...]: derive a copy of the run's checkpoint in $S6/<folder>/<run>
    local copy=$S6/$2/$(basename $1)
    mkdir -p $copy && cp $1/checkpoint.pt $1/checkpoint.index.json $copy/ && pick $copy "${@:3}"
    $BIN/python -m experiments.search_quality.place_derived $OUT/pool24 $copy/pick_$3 --workers 1 >> $S6/placed.jsonl
}
for run in $S5/reinforce_s0 $S5/reinforce_s1 $S5/reinforce_s2 $S6/random_s4; do
    derive_copy $run by_loss one_shot_loss rank_by=loss
done
for run in $S5/reinforce_s? $S6/reinforce_s? $S6/random_s?; do
    derive_copy $run inherit_loss inherit20bn_loss estimator=inherit steps=20 recalibrate_bn=20 workers=1 rank_by=loss
done
$BIN/python -m experiments.search_quality.estimators $OUT/all rank_check_24 inherit20bn inherit20bnx2 \
    --pair inherit20bn:rank_check_24 --pair inherit20bnx2:inherit20bn --loss > experiments/search_quality/estimators_s6.md
cat $S5/placed.jsonl $S6/placed.jsonl > $OUT/all/placed.jsonl
$BIN/python -m experiments.search_quality.picks $OUT/all/placed.jsonl --versus reinforce:random \
    > experiments/search_quality/picks_s6.md

# 8. Seventh session: fresh seeds for the loss-ranked inherited derive (README section 2f). The
#    pool trained again (a fresh /tmp; the command of step 6) and exported to pool24_s7.json, so
#    that a later session can place picks without training it again; four new REINFORCE
#    supernets (seeds 6-9) and three new random-search supernets (seeds 5-7), each derived by its
#    shared weights (the preset's default) and by 20 inherited steps with BN recalibration ranked
#    by validation loss; every pick placed in the pool.
$BIN/enas-beats-random "${TASK[@]}" 'seeds=[]' num_random=24 'train_seeds=[0,1,2,3,4,5]' average=3 workers=2 \
    out_dir=$OUT/pool24
$BIN/python -m experiments.search_quality.pool_table $OUT/pool24 > experiments/search_quality/pool24_s7.json
S7=$OUT/s7
for run in reinforce_s6 reinforce_s7 reinforce_s8 reinforce_s9 random_s5 random_s6 random_s7; do
    strategy=${run%_s*} seed=${run##*_s}
    $BIN/enas-search "${TASK[@]}" strategy=$strategy seed=$seed hydra.run.dir=$S7/$run
    pick $S7/$run one_shot      # the preset's derive until this session (now: add estimator=one_shot)
    pick $S7/$run inherit20bn_loss estimator=inherit steps=20 recalibrate_bn=20 workers=1 rank_by=loss
    $BIN/python -m experiments.search_quality.place_derived experiments/search_quality/pool24_s7.json \
        $S7/$run/pick_one_shot $S7/$run/pick_inherit20bn_loss --workers 2 >> $S7/placed.jsonl
done
$BIN/python -m experiments.search_quality.picks $S7/placed.jsonl --baseline one_shot --versus reinforce:random \
    > experiments/search_quality/picks_s7.md
# (the searches ran two at a time beside the pool; every pick placed once the pool was done)
for run in $S7/*_s?; do    # rank checks of the new supernets (ran two at a time with ground_truth.workers=1)
    ln -sfn "$(realpath $OUT/pool24/random)" $run/rank_check_runs
    rank_check $run rank_check_24
    rank_check $run inherit20bn estimator.name=inherit estimator.steps=20 estimator.recalibrate_bn=20
done
$BIN/python -m experiments.search_quality.estimators $S7 rank_check_24 inherit20bn --pair inherit20bn:rank_check_24 \
    --loss > experiments/search_quality/estimators_s7.md

# 9. Eighth session: a final round in derive, a low-fidelity baseline, more seeds (README section 2g).
#    Six new supernets with the preset's search (REINFORCE seeds 10-12, random search seeds 8-10),
#    each derived by its shared weights, by the preset's derive, and by the preset's derive plus a
#    final round (`finalists=5`: the five best trained one epoch from scratch and ranked again);
#    the seventh session's seven supernets derived with the final round too; every pick placed in
#    the committed pool (no pool training this session).
S8=$OUT/s8
for run in reinforce_s10 random_s8 reinforce_s11 random_s9 reinforce_s12 random_s10; do
    strategy=${run%_s*} seed=${run##*_s}
    $BIN/enas-search "${TASK[@]}" strategy=$strategy seed=$seed hydra.run.dir=$S8/$run
    pick $S8/$run one_shot estimator=one_shot rank_by=score
    pick $S8/$run inherit20bn_loss workers=1          # the preset's derive (inherit 20 + BN, by loss)
done
for run in $S7/*_s? $S8/*_s?; do
    pick $run final5 estimator=inherit steps=20 recalibrate_bn=20 rank_by=loss finalists=5 finalist_epochs=1 workers=1
done
for p in $S8/*_s*/pick_*; do
    $BIN/python -m experiments.search_quality.place_derived experiments/search_quality/pool24_s7.json $p \
        --data-path $CIFAR --workers 1 >> $S8/placed.jsonl
done
for p in $S7/*_s*/pick_final5; do
    $BIN/python -m experiments.search_quality.place_derived experiments/search_quality/pool24_s7.json $p \
        --data-path $CIFAR --workers 1 >> $S7/placed_final.jsonl
done
cat $S7/placed.jsonl $S7/placed_final.jsonl $S8/placed.jsonl > experiments/search_quality/placed_s8.jsonl
$BIN/python -m experiments.search_quality.picks experiments/search_quality/placed_s8.jsonl \
    --baseline inherit20bn_loss --versus reinforce:random > experiments/search_quality/picks_s8.md
$BIN/python -m experiments.search_quality.picks experiments/search_quality/picks_s6.md \
    experiments/search_quality/placed_s8.jsonl --baseline one_shot --versus reinforce:random \
    > experiments/search_quality/picks_all.md
# The low-fidelity baseline: the 24 pool architectures each trained one epoch from scratch (BN
# recalibrated), twice (the run folder only sets the children's seeds), and what a user gets who
# keeps the best of K random architectures by that estimate.
for run in $S7/random_s5 $S7/reinforce_s9 $S7/random_s6; do
    rank_check $run standalone78bn estimator.name=standalone estimator.steps=78 estimator.recalibrate_bn=20
done
$BIN/python -m experiments.search_quality.estimators $S7 standalone78bn rank_check_24 inherit20bn \
    --best-of 1 --best-of 3 --best-of 5 --best-of 10 --best-of 24 > experiments/search_quality/best_of_k.md
# What they cost: the preset's search again (REINFORCE seed 10: the same rewards to the last digit),
# its derive, and the derive with the final round, under /usr/bin/time (beside other runs).
T='%e s wall, %U s user, %S s system'
/usr/bin/time -f "search: $T" $BIN/enas-search "${TASK[@]}" strategy=reinforce seed=10 hydra.run.dir=$OUT/cost_s10
/usr/bin/time -f "derive: $T" $BIN/enas-derive run_dir=$OUT/cost_s10 workers=1
/usr/bin/time -f "derive, finalists=5: $T" $BIN/enas-derive run_dir=$OUT/cost_s10 workers=1 finalists=5

# 10. Ninth session: the micro space (section 4). Preset quality_cifar_micro; its own pool of 12
#     uniformly drawn micro networks trained with seeds 0 and 1 (one training per measurement:
#     noise ceiling 0.545), then with seeds 2 and 3 too (a measurement the mean of 2 trainings);
#     each setting searched, derived by the preset (the shared weights, 50 samples + greedy + best
#     seen on the 2,000 validation images), rank-checked on the pool's 12 architectures and placed
#     among them. The supernet settings leave the ground-truth network official (trainer.sizes).
M=$OUT/micro
MTASK=(experiment=quality_cifar_micro data.path=$CIFAR "${OLD[@]}" "${MOLD[@]}" trainer.epochs=3)   # steps 10-11: 3 epochs
$BIN/enas-beats-random "${MTASK[@]}" 'seeds=[]' num_random=12 'train_seeds=[0,1]' workers=1 out_dir=$M/pool
mkdir -p $M/pool4 && ln -sfn "$(realpath $M/pool/random)" $M/pool4/random      # the 24 trainings reused
$BIN/enas-beats-random "${MTASK[@]}" 'seeds=[]' num_random=12 'train_seeds=[0,1,2,3]' average=2 workers=1 \
    out_dir=$M/pool4
BEFORE=(controller.priors=false space.sizes.sep_conv_stack=1 space.sizes.per_input_weights=false
        space.sizes.aux_head=false search.aux_weight=0.0 controller.adam_beta1=0.9 controller.adam_eps=1e-8)
micro() {   # name strategy seed [overrides...]: search, derive, rank check, placement
    local name=$1 strategy=$2 seed=$3; shift 3
    local run=$M/runs/$name/$strategy-seed$seed/search
    $BIN/enas-search "${MTASK[@]}" strategy=$strategy seed=$seed hydra.run.dir=$run "$@"
    $BIN/enas-derive run_dir=$run
    ln -sfn "$(realpath $M/pool/random)" $run/rank_check_runs
    $BIN/enas-rank-check run_dir=$run report=rank_check_2000 num_archs=12 seed=0 'ground_truth.seeds=[0,1,2,3]' \
        ground_truth.average=2 ground_truth.workers=1
    $BIN/python -m experiments.search_quality.place_derived $M/pool4 $run --seeds 0,1,2,3 --average 2 --workers 1 \
        >> $M/runs/$name/placed.jsonl
}
for seed in 0 1 2; do micro main reinforce $seed; done
for seed in 0 1; do micro main random $seed; done
micro before_fixes reinforce 0 "${BEFORE[@]}"
micro warmup reinforce 0 search.warmup_epochs=3
# FairNAS trains a group of 5 architectures per omega step: 16 steps per epoch keep the search's
# forward-backward passes those of the others (78 steps x 1 architecture)
micro fair reinforce 0 search.fair_sampling=true search.omega_steps=16
micro variance_reduction reinforce 0 controller.baseline=batch_mean evaluator.options.shared_batches=true
$BIN/python -m experiments.search_quality.table $M/runs --checks rank_check_2000.json \
    > experiments/search_quality/table_micro.md
$BIN/python -m experiments.search_quality.pool_table $M/pool4 --seeds 0,1,2,3 > experiments/search_quality/pool12_micro.json
cat $M/runs/*/placed.jsonl > experiments/search_quality/placed_micro.jsonl

# 11. Tenth session (section 5): the micro pool trained with seeds 4 and 5 too (a measurement the
#     mean of 3 trainings; the ceiling over every split of the 6 seeds), every micro search of step
#     10 rank-checked and placed again against it (its derived cell trained a third time), then new
#     searches checked and placed the same way: more seeds of main, no op prior, no op prior with a
#     10x controller learning rate, 4 batches per reward, few-shot.
mkdir -p $M/pool6 && ln -sfn "$(realpath $M/pool/random)" $M/pool6/random       # the 48 trainings reused
$BIN/enas-beats-random "${MTASK[@]}" 'seeds=[]' num_random=12 'train_seeds=[0,1,2,3,4,5]' average=3 workers=1 \
    out_dir=$M/pool6
$BIN/python -m experiments.search_quality.pool_table $M/pool6 --seeds 0,1,2,3,4,5 --ceilings \
    > experiments/search_quality/ceilings_micro.md
$BIN/python -m experiments.search_quality.pool_table $M/pool6 --seeds 0,1,2,3,4,5 \
    > experiments/search_quality/pool12_micro.json
micro6() {   # name strategy seed: a search of step 10 or 11 checked and placed against 6 trainings
    local name=$1 strategy=$2 seed=$3
    local run=$M/runs/$name/$strategy-seed$seed/search six=$M/runs6/$name/$strategy-seed$seed
    ln -sfn "$(realpath $M/pool/random)" $run/rank_check_runs
    $BIN/enas-rank-check run_dir=$run report=rank_check_6seeds num_archs=12 seed=0 \
        'ground_truth.seeds=[0,1,2,3,4,5]' ground_truth.average=3 ground_truth.workers=1
    mkdir -p $six && ln -sfn $run $six/search
    [ -d $M/runs/$name/$strategy-seed$seed/derived ] && ln -sfn $M/runs/$name/$strategy-seed$seed/derived $six/derived
    $BIN/python -m experiments.search_quality.place_derived $M/pool6 $six/search --seeds 0,1,2,3,4,5 --average 3 \
        --workers 1 >> $M/runs6/$name/placed.jsonl
}
for seed in 0 1 2; do micro6 main reinforce $seed; done
for seed in 0 1; do micro6 main random $seed; done
for name in before_fixes warmup fair variance_reduction; do micro6 $name reinforce 0; done
search_derive() {  # name strategy seed [overrides...]: a new search on ${STASK[@]} and its derive
    local name=$1 strategy=$2 seed=$3; shift 3
    local run=$M/runs/$name/$strategy-seed$seed/search
    $BIN/enas-search "${STASK[@]}" strategy=$strategy seed=$seed hydra.run.dir=$run "$@"
    $BIN/enas-derive run_dir=$run
}
STASK=("${MTASK[@]}")
search6() { search_derive "$@"; micro6 $1 $2 $3; }   # name strategy seed [overrides...]: then micro6
search6 main reinforce 3
search6 main random 2
search6 no_prior reinforce 0 controller.priors=false
for seed in 0 1 2; do search6 no_prior_fast reinforce $seed controller.priors=false controller.lr=0.035; done
search6 reward_batches reinforce 0 evaluator.options.batches_per_reward=4
search6 few_shot reinforce 0 search.few_shot.decision=normal_node0_op_a search.few_shot.split_epoch=3
$BIN/python -m experiments.search_quality.table $M/runs6 --checks rank_check_6seeds.json \
    > experiments/search_quality/table_micro6.md
cat $M/runs6/*/placed.jsonl > experiments/search_quality/placed_micro6.jsonl
$BIN/python -m experiments.search_quality.op_bias $M/runs --check rank_check_6seeds.json --features pools,sep_convs \
    --derived > experiments/search_quality/op_bias_micro.md
RUNS=($M/runs/*/reinforce-seed*/search); NAMES=()
for run in "${RUNS[@]}"; do NAMES+=("$(basename "$(dirname "$(dirname $run)")")/$(basename "$(dirname $run)")"); done
$BIN/python -m experiments.search_quality.entropy_curve "${RUNS[@]}" --names "${NAMES[@]}" \
    > experiments/search_quality/entropy_micro.md
$BIN/python -m experiments.search_quality.controller_steps "${RUNS[@]}" --names "${NAMES[@]}" \
    > experiments/search_quality/controller_steps_micro.md

# 12. Eleventh session (section 6): the micro ground truth at 6 epochs (the preset's recipe since
#     then), the same 12 cells, 4 seeds, a measurement the mean of 2 trainings; searches with a
#     controller that takes full Adam steps (eps 1e-8, the rest as main); every main and learns
#     search rank-checked and placed against the 6-epoch pool (its derived cell trained twice).
E6=(experiment=quality_cifar_micro data.path=$CIFAR)
$BIN/enas-beats-random "${E6[@]}" 'seeds=[]' num_random=12 'train_seeds=[0,1,2,3]' average=2 workers=2 \
    out_dir=$M/pool_e6
$BIN/python -m experiments.search_quality.pool_table $M/pool_e6 --seeds 0,1,2,3 --ceilings \
    > experiments/search_quality/ceilings_micro_e6.md
$BIN/python -m experiments.search_quality.pool_table $M/pool_e6 --seeds 0,1,2,3 \
    > experiments/search_quality/pool12_micro_e6.json
for seed in 0 1 2; do search6 learns reinforce $seed controller.adam_eps=1e-8; done
rank_e6() {   # run_dir report [estimator options...]: rank check against the 6-epoch pool (its trainings reused)
    ln -sfn "$(realpath $M/pool_e6/random)" $1/rank_check_runs
    $BIN/enas-rank-check run_dir=$1 report=$2 num_archs=12 seed=0 'ground_truth.seeds=[0,1,2,3]' \
        ground_truth.average=2 ground_truth.workers=1 'ground_truth.overrides=["trainer.epochs=6"]' "${@:3}"
}
micro_e6() {   # name strategy seed: a search checked and placed against the 6-epoch pool
    local name=$1 strategy=$2 seed=$3
    local run=$M/runs/$name/$strategy-seed$seed/search e6=$M/runse6/$name/$strategy-seed$seed
    rank_e6 $run rank_check_e6
    mkdir -p $e6 && ln -sfn $run $e6/search
    $BIN/python -m experiments.search_quality.place_derived $M/pool_e6 $e6/search --seeds 0,1,2,3 --average 2 \
        --workers 1 >> $M/runse6/$name/placed.jsonl
}
for seed in 0 1 2 3; do micro_e6 main reinforce $seed; done
for seed in 0 1 2; do micro_e6 main random $seed; micro_e6 learns reinforce $seed; done
$BIN/python -m experiments.search_quality.table $M/runse6 --checks rank_check_e6.json \
    > experiments/search_quality/table_micro_e6.md
cat $M/runse6/*/placed.jsonl > experiments/search_quality/placed_micro_e6.jsonl
$BIN/python -m experiments.search_quality.table $M/runs6 --checks rank_check_6seeds.json \
    > experiments/search_quality/table_micro6.md                  # again: the learns rows, the judged ceiling
cat $M/runs6/*/placed.jsonl > experiments/search_quality/placed_micro6.jsonl
LEARNS=($M/runs/learns/reinforce-seed{0,1,2}/search)
$BIN/python -m experiments.search_quality.entropy_curve "${LEARNS[@]}" --names learns/reinforce-seed{0,1,2} \
    > experiments/search_quality/entropy_micro_learns.md
$BIN/python -m experiments.search_quality.controller_steps "${LEARNS[@]}" --names learns/reinforce-seed{0,1,2} \
    > experiments/search_quality/controller_steps_learns.md

# 13. Twelfth session (section 7): every micro option search of steps 10-11 rank-checked and placed
#     against the 6-epoch pool (its derived cell trained twice), then seeds 1-2 of FairNAS and of the
#     few-shot supernet with REINFORCE (and its seed 3), few-shot random search (seeds 0-2) at the same budget.
for name in before_fixes warmup fair variance_reduction no_prior reward_batches few_shot; do micro_e6 $name reinforce 0; done
for seed in 0 1 2; do micro_e6 no_prior_fast reinforce $seed; done
FAIR=(search.fair_sampling=true search.omega_steps=16)
FEW=(search.few_shot.decision=normal_node0_op_a search.few_shot.split_epoch=3)
STASK=("${E6[@]}" "${OLD[@]}" "${MOLD[@]}")                      # the 6-epoch preset, entropy form pinned as before
search_e6() { search_derive "$@"; micro_e6 $1 $2 $3; }  # name strategy seed [overrides...]: then micro_e6
for seed in 1 2; do search_e6 fair reinforce $seed "${FAIR[@]}"; search_e6 few_shot reinforce $seed "${FEW[@]}"; done
for seed in 0 1 2; do search_e6 few_shot random $seed "${FEW[@]}"; done
search_e6 few_shot reinforce 3 "${FEW[@]}"
VERSUS=(--versus main/reinforce:main/random --versus learns/reinforce:main/random --versus fair/reinforce:main/random
        --versus few_shot/reinforce:few_shot/random --versus few_shot/reinforce:main/random)
$BIN/python -m experiments.search_quality.table $M/runse6 --checks rank_check_e6.json "${VERSUS[@]}" \
    > experiments/search_quality/table_micro_e6.md
cat $M/runse6/*/placed.jsonl > experiments/search_quality/placed_micro_e6.jsonl
OPTS=($M/runs/few_shot/reinforce-seed{0,1,2,3}/search $M/runs/fair/reinforce-seed{0,1,2}/search)
$BIN/python -m experiments.search_quality.entropy_curve "${OPTS[@]}" --names few_shot/reinforce-seed{0,1,2,3} \
    fair/reinforce-seed{0,1,2} > experiments/search_quality/entropy_micro_options.md

# 14. Thirteenth session (section 8): seeds 1-2 of 4 validation batches per reward (the setting whose
#     seed 0 ranked best); on the few-shot supernet a controller that takes full Adam steps
#     (few_shot_learns) and one that never moves (controller.lr=0: its initial distribution, i.e. the
#     official op prior, sampled throughout; few_shot_prior), seeds 0-2 of each.
for seed in 1 2; do search_e6 reward_batches reinforce $seed evaluator.options.batches_per_reward=4; done
for seed in 0 1 2; do search_e6 few_shot_learns reinforce $seed "${FEW[@]}" controller.adam_eps=1e-8; done
for seed in 0 1 2; do search_e6 few_shot_prior reinforce $seed "${FEW[@]}" controller.lr=0; done
# Which estimator ranks the pool on the main supernets (REINFORCE seeds 0-3, random search 0-2):
# the shared weights then 20 training steps with BN recalibrated (inherit), and the same 20 steps
# from a fresh initialisation (standalone, seed 0's run: it does not read the supernet).
INH=(estimator.name=inherit estimator.steps=20 estimator.recalibrate_bn=20)
mkdir -p $M/est_main
for s in 0 1 2 3; do ln -sfn $M/runs/main/reinforce-seed$s/search $M/est_main/reinforce_s$s; done
for s in 0 1 2; do ln -sfn $M/runs/main/random-seed$s/search $M/est_main/random_s$s; done
for run in $M/est_main/*_s?; do rank_e6 $run rank_check_e6_inherit20bn "${INH[@]}"; done
rank_e6 $M/est_main/reinforce_s0 rank_check_e6_standalone20bn estimator.name=standalone estimator.steps=20 \
    estimator.recalibrate_bn=20
$BIN/python -m experiments.search_quality.estimators $M/est_main rank_check_e6 rank_check_e6_inherit20bn \
    rank_check_e6_standalone20bn --pair rank_check_e6_inherit20bn:rank_check_e6 \
    --pair rank_check_e6_inherit20bn:rank_check_e6_standalone20bn > experiments/search_quality/estimators_micro_e6.md
VERSUS+=(--versus reward_batches/reinforce:main/random --versus few_shot_prior/reinforce:few_shot/random
         --versus few_shot_learns/reinforce:few_shot/random --versus few_shot/reinforce:few_shot_prior/reinforce
         --versus few_shot_learns/reinforce:few_shot_prior/reinforce)
$BIN/python -m experiments.search_quality.table $M/runse6 --checks rank_check_e6.json "${VERSUS[@]}" \
    > experiments/search_quality/table_micro_e6.md
cat $M/runse6/*/placed.jsonl > experiments/search_quality/placed_micro_e6.jsonl
S8=($M/runs/few_shot_learns/reinforce-seed{0,1,2}/search $M/runs/few_shot_prior/reinforce-seed{0,1,2}/search
    $M/runs/reward_batches/reinforce-seed{0,1,2}/search)
$BIN/python -m experiments.search_quality.entropy_curve "${S8[@]}" --names few_shot_learns/reinforce-seed{0,1,2} \
    few_shot_prior/reinforce-seed{0,1,2} reward_batches/reinforce-seed{0,1,2} > experiments/search_quality/entropy_micro_s8.md

# 15. Fourteenth session (section 9): seeds 1-2 of the two section-3 options that had one seed against
#     the 6-epoch pool (variance reduction, warm-up; the settings before the fidelity fixes dropped for
#     time); the inherited estimate (20 steps, BN recalibrated) rank-checked on 12 supernets of four
#     settings it had not seen (learns, 4 batches per reward, variance reduction, FairNAS: a held-out
#     test of ranking by loss), and once with estimator.rank_by=loss (main REINFORCE seed 0: the
#     command gives the figure the tables compute from the rows); the main REINFORCE supernets derived
#     with that estimate ranked by loss (each on a copy of its checkpoint), the picks placed in the
#     pool; the consensus tables (noise or bias?).
VR=(controller.baseline=batch_mean evaluator.options.shared_batches=true)
for seed in 1 2; do
    search_e6 variance_reduction reinforce $seed "${VR[@]}"
    search_e6 warmup reinforce $seed search.warmup_epochs=3
done
mkdir -p $M/est_heldout
for name in learns reward_batches variance_reduction fair; do
    for s in 0 1 2; do
        ln -sfn $M/runs/$name/reinforce-seed$s/search $M/est_heldout/${name}_s$s
        rank_e6 $M/est_heldout/${name}_s$s rank_check_e6_inherit20bn "${INH[@]}"
    done
done
rank_e6 $M/runs/main/reinforce-seed0/search rank_check_e6_inherit20bn_loss "${INH[@]}" estimator.rank_by=loss
$BIN/python -m experiments.search_quality.estimators $M/est_heldout rank_check_e6 rank_check_e6_inherit20bn --consensus \
    --loss > experiments/search_quality/estimators_heldout.md
$BIN/python -m experiments.search_quality.estimators $M/est_main rank_check_e6 rank_check_e6_inherit20bn --consensus \
    > experiments/search_quality/consensus_main.md
mkdir -p $M/est_all                       # every supernet rank-checked against the 6-epoch pool
for run in $M/runs/*/*-seed?/search; do
    [ -f $run/rank_check_e6.json ] || continue
    setting=$(basename $(dirname $(dirname $run))) folder=$(basename $(dirname $run))
    ln -sfn $run $M/est_all/${setting}_${folder%-seed*}_s${folder##*-seed}
done
$BIN/python -m experiments.search_quality.estimators $M/est_all rank_check_e6 --consensus \
    > experiments/search_quality/consensus_all.md
PM=$M/picks_main                          # <search>_s<seed>/pick_<estimator>/arch.json, as picks.py reads them
for s in 0 1 2 3; do
    run=$M/runs/main/reinforce-seed$s/search copy=$PM/reinforce_s$s/copy
    mkdir -p $PM/reinforce_s$s/pick_one_shot $copy && cp $run/arch.json $PM/reinforce_s$s/pick_one_shot/
    cp $run/checkpoint.pt $run/checkpoint.index.json $copy/
    pick $copy inherit20bn_loss estimator=inherit steps=20 recalibrate_bn=20 workers=1 rank_by=loss
    mv $copy/pick_inherit20bn_loss $PM/reinforce_s$s/
    for p in one_shot inherit20bn_loss; do
        $BIN/python -m experiments.search_quality.place_derived $M/pool_e6 $PM/reinforce_s$s/pick_$p --seeds 0,1,2,3 \
            --average 2 --workers 1 >> $PM/placed.jsonl
    done
done
$BIN/python -m experiments.search_quality.picks $PM/placed.jsonl --baseline one_shot > experiments/search_quality/picks_micro.md
VERSUS+=(--versus variance_reduction/reinforce:main/random --versus warmup/reinforce:main/random)
$BIN/python -m experiments.search_quality.table $M/runse6 --checks rank_check_e6.json "${VERSUS[@]}" \
    > experiments/search_quality/table_micro_e6.md
cat $M/runse6/*/placed.jsonl > experiments/search_quality/placed_micro_e6.jsonl
