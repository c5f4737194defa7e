#!/usr/bin/env bash
# The recipe of ClassSR-MSRResNet x4 and MSRResNet-O, in resumable steps (`make weights MODEL=msrresnet`).
#
# The same protocol as scripts/recipe_fsrcnn_x4.sh, on BasicSR's MSRResNet (num_feat 64, 16 blocks,
# the arch unchanged): the base network is trained first and is ClassSR's widest branch, frozen.
# Photos and sub-images are the FSRCNN recipe's (its steps `photos data` run first if missing).
#
#   base        MSRResNet x4 on all sub-images: MSRResNet-O               -> $CKPT/msrresnet_o_x4.pth
#               (hours on 2 cores: `park` below keeps the newest state in $CKPT/MSRResNet_x4_O.partial/
#               for a commit, and the next run resumes from it, on this machine or a fresh clone)
#   difficulty  classes by MSRResNet-O's PSNR (equal thirds)              -> $CKPT/meta_info_difficulty_msrresnet.txt
#   branches    phase 1 for each width set in $WIDTH_SETS (the paper's 36/52/64, and latency widths):
#               the narrow branches from MSRResNet-O's leading channels, each on its class, distilled
#                                                                          -> $CKPT/classsr_msrresnet_<w>_branches_x4.pth
#   oracle      oracle labels and edge-score routers (gradient and Laplacian, from one pass) over each
#               width set's branches                     -> $CKPT/classsr_msrresnet_<w>_{gradient,laplacian}_x4.pth
#   supervised  phase 2, supervised router                                -> $CKPT/classsr_msrresnet_<w>_supervised_x4.pth
#   paper       phase 2 with the paper's losses                           -> $CKPT/classsr_msrresnet_<w>_paper_x4.pth
#   zero        the same branches behind a zero-cost first class (bicubic: MSRResNet has no fixed skip),
#               oracle labels and edge routers               -> $CKPT/classsr_msrresnet_<w>_zero_{gradient,laplacian}_x4.pth
# `STEPS="base"` runs only that step; `park` (or STEPS=park) copies the newest state of the base run
# and of each width set's branches run (also hours) into $CKPT for a commit. A step whose checkpoint
# exists is skipped.
set -euo pipefail
{  # the whole recipe is read before it runs: editing this file while it runs cannot break the run

source "$(dirname "$0")/recipe_common.sh"
N_BASE=${N_BASE:-6000}           # MSRResNet-O, batch 16 (3.5-4 s an iteration on 2 cores, torch 2.14)
LR_BASE=${LR_BASE:-3e-4}         # BasicSR's 2e-4 is for 1M iterations; a short cosine run starts higher
N_BRANCHES=${N_BRANCHES:-6000}   # phase 1, batch 16, per width set
N_ROUTER=${N_ROUTER:-6000}       # phase 2 supervised, batch 64 (classifier only)
N_PAPER=${N_PAPER:-1500}         # phase 2 with the paper's losses, batch 32 (every branch runs)
TOL=${TOL:-3e-6}
LR_ROUTER=${LR_ROUTER:-0.003}
MAX_LOSS=${MAX_LOSS:-0.02}        # edge routers: fitted per photo (FSRCNN's held-out: better plain and zero routers)
WIDTH_SETS=${WIDTH_SETS:-"36,52,64 32,48,64"}
REGION_MARGIN=${REGION_MARGIN:-3}  # the trained MSRResNet-O's (benchmarks/margins.py --trained), in every export
SAVE_EVERY=${SAVE_EVERY:-100}      # the base run spans sessions: lose at most 100 iterations (6 min idle)
STEPS=${STEPS:-base difficulty branches oracle supervised paper zero}
BASE=MSRResNet_x4_O

[ -f "$DATA/meta_info.txt" ] || STEPS="photos data" "$REPO/scripts/recipe_fsrcnn_x4.sh"

if want park; then
  park "$BASE"
  for widths in $WIDTH_SETS; do park "ClassSR_MSRResNet_${widths//,/_}_1_branches"; done
fi

base_run() {
  train "$BASE" MSRResNet_x4_baseline.yml "$N_BASE" "train:optim_g:lr=$LR_BASE" logger:print_freq=50
  "$CLASSSR" export -opt "$CFG/MSRResNet_x4_baseline.yml" -w "$(latest "$BASE")" -o "$CKPT/msrresnet_o_x4.pth"
}
if want base && [ ! -f "$CKPT/msrresnet_o_x4.pth" ]; then parked "$BASE" base_run; fi

LABELS=$DATA/meta_info_difficulty_msrresnet.txt
kept "$LABELS"  # 22 min of MSRResNet-O over every sub-image: a fresh clone takes the committed copy
if want difficulty && [ ! -f "$LABELS" ]; then
  timed difficulty_msrresnet "$CLASSSR" label --data "$DATA" --by difficulty --ref "$CKPT/msrresnet_o_x4.pth" \
    --classes 3 -o "$LABELS"
fi
kept "$LABELS"

for widths in $WIDTH_SETS; do
  tag=${widths//,/_}
  branches=$CKPT/classsr_msrresnet_${tag}_branches_x4.pth
  run1=ClassSR_MSRResNet_${tag}_1_branches
  branches_run() {
    train "$run1" ClassSR_SRResNet_x4_1_branches.yml "$N_BRANCHES" \
      "network_g:widths=[$widths]" "classsr:init_base=$CKPT/msrresnet_o_x4.pth" classsr:init_narrow=slice \
      classsr:distill=1 "datasets:train:meta_info=$LABELS" "datasets:train:classes=[0,1]"
    "$CLASSSR" export -opt "$CFG/ClassSR_SRResNet_x4_1_branches.yml" \
      -w "$(latest "$run1")" -o "$branches" --set "network_g.widths=[$widths]" "network_g.margin=$REGION_MARGIN"
  }
  if want branches && [ ! -f "$branches" ]; then parked "$run1" branches_run; fi
  oracle=$DATA/meta_info_oracle_msrresnet_$tag.txt
  edge=$CKPT/classsr_msrresnet_${tag}_{score}_x4.pth  # one router per edge score, all from one pass
  if want oracle && { [ ! -f "$oracle" ] || [ ! -f "${edge/\{score\}/laplacian}" ]; }; then
    # the widest branch is MSRResNet-O: its errors come from the difficulty labels (22 min saved a width set)
    timed "oracle_msrresnet_$tag" "$CLASSSR" label --data "$DATA" --by oracle -opt "$branches" --tol "$TOL" \
      -o "$oracle" --score gradient,laplacian --edge-router "$edge" --max-loss "$MAX_LOSS" --widest-psnr "$LABELS" \
      --fit photo
  fi
  phase2() {  # $1 = name, $2 = checkpoint, $3 = iterations, rest = overrides
    local name=$1 out=$2 n=$3; shift 3
    [ -f "$out" ] && return 0
    train "$name" ClassSR_SRResNet_x4_2_classifier.yml "$n" "network_g:widths=[$widths]" \
      "path:pretrain_network_g=$branches" path:param_key_g=params "$@"
    "$CLASSSR" export -opt "$CFG/ClassSR_SRResNet_x4_2_classifier.yml" -w "$(latest "$name")" -o "$out" \
      --set "network_g.widths=[$widths]" "network_g.margin=$REGION_MARGIN"
  }
  if want supervised; then
    phase2 "ClassSR_MSRResNet_${tag}_2_supervised" "$CKPT/classsr_msrresnet_${tag}_supervised_x4.pth" "$N_ROUTER" \
      classsr:router=supervised datasets:train:batch_size_per_gpu=64 "train:optim_g:lr=$LR_ROUTER" \
      classsr:reset_classifier=true network_g:classifier:init_scale=1.0 "datasets:train:meta_info=$oracle"
  fi
  if want paper; then
    phase2 "ClassSR_MSRResNet_${tag}_2_paper" "$CKPT/classsr_msrresnet_${tag}_paper_x4.pth" "$N_PAPER" \
      classsr:routing=hard datasets:train:batch_size_per_gpu=32
  fi
  zero=$CKPT/classsr_msrresnet_${tag}_zero_branches_x4.pth  # the branches, with a fresh four-class classifier
  zedge=$CKPT/classsr_msrresnet_${tag}_zero_{score}_x4.pth
  if want zero && [ ! -f "${zedge/\{score\}/laplacian}" ]; then
    [ -f "$zero" ] || "$CLASSSR" export -opt "$CFG/ClassSR_SRResNet_x4_2_classifier.yml" -w "$branches" \
      --set "network_g.widths=[$widths]" "network_g.margin=$REGION_MARGIN" network_g.zero_class=true -o "$zero"
    timed "oracle_msrresnet_${tag}_zero" "$CLASSSR" label --data "$DATA" --by oracle -opt "$zero" --tol "$TOL" \
      -o "$DATA/meta_info_oracle_msrresnet_${tag}_zero.txt" --score gradient,laplacian --edge-router "$zedge" \
      --max-loss "$MAX_LOSS" --widest-psnr "$LABELS" --fit photo
  fi
done
cat logs/walltimes.txt
exit
}
