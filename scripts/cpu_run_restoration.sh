#!/usr/bin/env bash
# Short CPU run of classsr_plugin's own scale-1 pipeline: ClassSR-DnCNN for denoise (sigma 25) and
# deblur (Gaussian, --blur-sigma 0.5-3). Run from /work/restore_run (configs' relative paths
# datasets/... and experiments/... land here). Configs are used unchanged except --force_yml overrides.
# Shared 2-core CPU machine, no GPU. Smaller DnCNN (8 layers, 32 features) to fit ~10 min per task.
# Usage:  bash run.sh prepare            # training sub-images + whole val pairs, both tasks
#         bash run.sh train TASK         # TASK = denoise | deblur : phases 1, 2, 3
#         bash run.sh eval TASK          # held-out table of the phase-3 model
#         bash run.sh diag TASK          # same table for the phase-1 and phase-2 models (diagnostic)
# Iterations: timing trials are kept under trials/. The first 20-iteration trial ran while the shared
# machine was loaded (2.6 s/it phase 1, batch 16); once the load was gone the same phase ran at
# ~0.07 s/it, 1 or 2 torch threads alike (trials/trial_t1.out, trial_t2.out). So torch is pinned to
# one thread (OMP_NUM_THREADS=1) to avoid thread oversubscription when the machine is shared again.
# A first pass with N = 90/30/30 (batch 32 in phases 2/3) is kept in trials/run0_N90_30_30.
# Phases 2/3 keep the configs' batch 96.
# Phase 1 trains the widest branch too (freeze_widest=false): this run predates the protocol (no trained DnCNN).
# Trial commands that were run (output under trials/), with $NET $COMMON as below:
#   classsr train -opt $C/ClassSR_DnCNN_denoise_s25_1_branches.yml --force_yml $NET $COMMON name=trial_denoise_p1 \
#     train:total_iter=20 "train:scheduler:periods=[20]" val:val_freq=20 logger:save_checkpoint_freq=20 logger:print_freq=10
#   classsr train -opt $C/ClassSR_DnCNN_denoise_s25_2_classifier.yml --force_yml $NET $COMMON name=trial_denoise_p2 \
#     path:pretrain_network_g=experiments/trial_denoise_p1/models/net_g_latest.pth datasets:train:batch_size_per_gpu=32 \
#     train:total_iter=8 "train:scheduler:periods=[8]" val:val_freq=1000 logger:save_checkpoint_freq=8 logger:print_freq=4
#   (same for _3_joint, name=trial_denoise_p3, pretrain from trial_denoise_p2)
#   run.sh train denoise with N1=90 N2=30 N3=30 B23=32, 2 torch threads -> trials/run0_N90_30_30
#   for t in 1 2: OMP_NUM_THREADS=$t classsr train -opt $C/ClassSR_DnCNN_denoise_s25_1_branches.yml --force_yml $NET $COMMON \
#     name=trial_t${t}_p1 train:total_iter=200 "train:scheduler:periods=[200]" val:val_freq=1000 logger:save_checkpoint_freq=200 logger:print_freq=100
# Order actually run: prepare (each command by hand), then for T in denoise deblur: train T, eval T; then diag denoise, diag deblur.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
RUN=${RUN:-/work/restore_run}               # work folder: data, experiments, logs
HR_TRAIN=${HR_TRAIN:-/work/cpu_run/hr_train}  # photos; the recorded run used the 22 of the first SR recipe (see README)
HR_VAL=${HR_VAL:-/work/cpu_run/hr_val}
mkdir -p "$RUN" && cd "$RUN"
export PATH=$REPO/.venv/bin:$PATH
export OMP_NUM_THREADS=1
C=$REPO/configs/basicsr
NET="network_g:base:num_layers=8 network_g:base:num_feat=32"
COMMON="num_gpu=0 datasets:train:num_worker_per_gpu=1 logger:use_tb_logger=false"
N1=3000; N2=200; N3=100; B23=96

cfg() { case $1 in denoise) echo ClassSR_DnCNN_denoise_s25;; deblur) echo ClassSR_DnCNN_deblur_gauss;; esac; }
iters() { echo "train:total_iter=$1" "train:scheduler:periods=[$1]" "val:val_freq=$1" "logger:save_checkpoint_freq=$1"; }

case $1 in
prepare)
  classsr prepare --task denoise --sigma 25 --hr $HR_TRAIN --out datasets/classsr_denoise --scales 1 --stride 32
  classsr prepare --task deblur --blur gaussian --blur-sigma 0.5-3 --hr $HR_TRAIN --out datasets/classsr_deblur --scales 1 --stride 32
  classsr prepare --whole --task denoise --sigma 25 --hr $HR_VAL --out datasets/classsr_val_denoise
  classsr prepare --whole --task deblur --blur gaussian --blur-sigma 0.5-3 --hr $HR_VAL --out datasets/classsr_val_deblur
  ;;
train)
  P=$(cfg $2); mkdir -p logs
  { time classsr train -opt $C/${P}_1_branches.yml --force_yml $NET $COMMON classsr:freeze_widest=false $(iters $N1) ; } > logs/$2_1.out 2>&1
  { time classsr train -opt $C/${P}_2_classifier.yml --force_yml $NET $COMMON datasets:train:batch_size_per_gpu=$B23 $(iters $N2) ; } > logs/$2_2.out 2>&1
  { time classsr train -opt $C/${P}_3_joint.yml --force_yml $NET $COMMON datasets:train:batch_size_per_gpu=$B23 $(iters $N3) ; } > logs/$2_3.out 2>&1
  ;;
eval)
  P=$(cfg $2)
  # copy of the phase-3 config, with the network overrides written into the yml itself
  sed -e 's/num_feat: 64, num_layers: 17/num_feat: 32, num_layers: 8/' \
      -e "s#pretrain_network_g: .*#pretrain_network_g: experiments/${P}_3_joint/models/net_g_latest.pth#" \
      $C/${P}_3_joint.yml > eval_${2}.yml
  { time classsr eval -opt eval_${2}.yml --hr datasets/classsr_val_$2/hr --lr datasets/classsr_val_$2/lr --scale 1 --stride 24 -o eval_$2 ; } > logs/$2_eval.out 2>&1
  ;;
diag)
  P=$(cfg $2)
  for PH in 1_branches 2_classifier; do
    sed -e "s#pretrain_network_g: .*#pretrain_network_g: experiments/${P}_${PH}/models/net_g_latest.pth#" eval_${2}.yml > eval_${2}_${PH}.yml
    { time classsr eval -opt eval_${2}_${PH}.yml --hr datasets/classsr_val_$2/hr --lr datasets/classsr_val_$2/lr --scale 1 --stride 24 -o eval_${2}_${PH} ; } > logs/$2_eval_${PH}.out 2>&1
  done
  ;;
esac
