#!/usr/bin/env bash
# The recipe of the shipped ClassSR-FSRCNN x4 and FSRCNN-O, in resumable steps (`make weights`).
#
# Protocol: the base network is trained first and is the reference (FSRCNN-O). ClassSR's widest
# branch IS that network, frozen in every phase, so ClassSR forced to its widest branch gives
# FSRCNN-O's output exactly; every dB ClassSR loses comes from routing and the narrow branches.
#
#   photos      classsr photos: natural photographs from Debian packages + scikit-image; 9 held out
#   data        difficulty-ranked LR/HR sub-images of the training photos; whole held-out pairs
#   base        FSRCNN (d=56) on all sub-images: FSRCNN-O                -> $CKPT/fsrcnn_o_x4.pth
#   difficulty  classes by FSRCNN-O's PSNR (equal thirds), as the paper ranks by a trained net
#   branches    phase 1: d=16 / d=36 from FSRCNN-O's leading channels, each on its class, L1 to HR
#               + L1 to FSRCNN-O's output (distillation); widest frozen   -> $CKPT/classsr_branches_x4.pth
#   oracle      per sub-image: the cheapest branch within MSE $TOL of the widest (classsr label), and
#               an edge-score router fitted to the branches, losing at most $MAX_LOSS dB on the
#               training sub-images                                        -> $CKPT/classsr_edge_x4.pth
#   supervised  phase 2, supervised router: cross-entropy to the oracle   -> $CKPT/classsr_supervised_x4.pth
#   paper       phase 2 with the paper's losses (L1 + Class + Average), for comparison
#                                                                          -> $CKPT/classsr_paper_x4.pth
#   supernet    shared-weight branches (issue "shared weights"), for comparison: the sandwich rule
#               from FSRCNN-O, as much wall time as the branches step       -> $CKPT/classsr_supernet_x4.pth
#   shared      its oracle labels and supervised router                     -> $CKPT/classsr_shared_x4.pth
#   zero        the zero class (issue "a zero-cost class"): the same branches with a first class that
#               runs no network (FSRCNN-O's bicubic skip alone); oracle labels, edge-score,
#               supervised and paper-loss routers over the four classes; the branches are unchanged
#                                                                          -> $CKPT/classsr_zero_{edge,nested,supervised,paper}_x4.pth
#   laplacian   edge-score routers scored by the RMS of the Laplacian (a ramp scores 0), without and
#               with the zero class, and nested             -> $CKPT/classsr_{lap,zero_lap,zero_nested_lap}_x4.pth
#   photofit    the Laplacian routers again, thresholds fitted to the loss per photo (`label --fit photo`:
#               each sub-image's added error relative to its photo's), without and with the zero class
#                                                                          -> $CKPT/classsr_{lap,zero_lap}_photo_x4.pth
# A step whose checkpoint exists is skipped; a training step stopped midway resumes
# (--auto_resume). `STEPS="branches oracle"` runs only those; delete a checkpoint to redo a step.
# Wall times go to $RUN/logs/walltimes.txt, each step's output to $RUN/logs/<step>.out.
# On a GPU: NUM_GPU=1 and larger N_*.
set -euo pipefail
{  # the whole recipe is read before it runs: editing this file while it runs cannot break the run

source "$(dirname "$0")/recipe_common.sh"
N_BASE=${N_BASE:-24000}        # FSRCNN-O, batch 16 (residual: converges fast)
N_BRANCHES=${N_BRANCHES:-16000}  # phase 1, batch 16
N_ROUTER=${N_ROUTER:-6000}     # phase 2 supervised, batch 64 (classifier only: cheap)
N_PAPER=${N_PAPER:-3000}       # phase 2 with the paper's losses, batch 32 (every branch runs)
N_SUPERNET=${N_SUPERNET:-5000} # shared weights, batch 16 x 3 widths (about the branches step's wall time)
TOL=${TOL:-3e-6}                # oracle tolerance: the classifier's mistakes need some slack
LR_ROUTER=${LR_ROUTER:-0.003}   # supervised router (fresh, unscaled init): at 2e-4 it stayed on the majority class
LR_SUPERNET=${LR_SUPERNET:-0.0002} # shared weights from FSRCNN-O: at 1e-3 the widest lost 0.8 dB on held-out photos
MAX_LOSS=${MAX_LOSS:-0.02}      # edge router: the dB it may lose on training sub-images, per photo (the target's allowance)
STEPS=${STEPS:-photos data base difficulty branches oracle supervised paper supernet shared zero laplacian photofit}

if want photos; then timed photos "$CLASSSR" photos --out "$RUN/photos"; fi

if want data && [ ! -f "$DATA/meta_info.txt" ]; then
  timed data "$CLASSSR" prepare --hr "$RUN/photos/train" --out "$DATA" --scale 4 --classes 3 \
    --scales 1,0.75,0.5 --tile 32 --stride 16
  timed data_heldout "$CLASSSR" prepare --whole --hr "$RUN/photos/heldout" --out "$RUN/data/heldout_x4"
fi

if want base && [ ! -f "$CKPT/fsrcnn_o_x4.pth" ]; then
  train FSRCNN_x4_O FSRCNN_x4_baseline.yml "$N_BASE"
  "$CLASSSR" export -opt "$CFG/FSRCNN_x4_baseline.yml" -w "$(latest FSRCNN_x4_O)" -o "$CKPT/fsrcnn_o_x4.pth"
fi

if want difficulty && [ ! -f "$DATA/meta_info_difficulty.txt" ]; then
  timed difficulty "$CLASSSR" label --data "$DATA" --by difficulty --ref "$CKPT/fsrcnn_o_x4.pth" --classes 3
fi

if want branches && [ ! -f "$CKPT/classsr_branches_x4.pth" ]; then
  train ClassSR_FSRCNN_x4_1_branches ClassSR_FSRCNN_x4_1_branches.yml "$N_BRANCHES" \
    "classsr:init_base=$CKPT/fsrcnn_o_x4.pth" classsr:init_narrow=slice classsr:distill=1 \
    "datasets:train:meta_info=$DATA/meta_info_difficulty.txt" "datasets:train:classes=[0,1]"
  "$CLASSSR" export -opt "$CFG/ClassSR_FSRCNN_x4_1_branches.yml" \
    -w "$(latest ClassSR_FSRCNN_x4_1_branches)" -o "$CKPT/classsr_branches_x4.pth"
fi

if want oracle && { [ ! -f "$DATA/meta_info_oracle.txt" ] || [ ! -f "$CKPT/classsr_edge_x4.pth" ]; }; then
  timed oracle "$CLASSSR" label --data "$DATA" --by oracle -opt "$CKPT/classsr_branches_x4.pth" --tol "$TOL" \
    --edge-router "$CKPT/classsr_edge_x4.pth" --score gradient --max-loss "$MAX_LOSS"
fi

# the supervised router (separate and shared branches alike): a fresh classifier, unscaled init
SUPERVISED=(classsr:router=supervised datasets:train:batch_size_per_gpu=64 "train:optim_g:lr=$LR_ROUTER"
            classsr:reset_classifier=true network_g:classifier:init_scale=1.0)
phase2() {  # $1 = name, $2 = checkpoint, $3 = iterations, rest = overrides (ZERO=true: with the zero class)
  local name=$1 out=$2 n=$3; shift 3
  [ -f "$out" ] && return 0
  train "$name" ClassSR_FSRCNN_x4_2_classifier.yml "$n" "path:pretrain_network_g=$CKPT/classsr_branches_x4.pth" \
    path:param_key_g=params "network_g:zero_class=${ZERO:-false}" "$@"
  "$CLASSSR" export -opt "$CFG/ClassSR_FSRCNN_x4_2_classifier.yml" -w "$(latest "$name")" -o "$out" \
    --set "network_g.zero_class=${ZERO:-false}"
}
if want supervised; then
  phase2 ClassSR_FSRCNN_x4_2_supervised "$CKPT/classsr_supervised_x4.pth" "$N_ROUTER" "${SUPERVISED[@]}" \
    "datasets:train:meta_info=$DATA/meta_info_oracle.txt"
fi
if want paper; then
  phase2 ClassSR_FSRCNN_x4_2_paper "$CKPT/classsr_paper_x4.pth" "$N_PAPER" classsr:routing=hard \
    datasets:train:batch_size_per_gpu=32
fi
if want supernet && [ ! -f "$CKPT/classsr_supernet_x4.pth" ]; then
  train ClassSR_FSRCNN_x4_1_supernet ClassSR_FSRCNN_x4_1_supernet.yml "$N_SUPERNET" \
    "classsr:init_base=$CKPT/fsrcnn_o_x4.pth" classsr:distill=1 "train:optim_g:lr=$LR_SUPERNET"
  "$CLASSSR" export -opt "$CFG/ClassSR_FSRCNN_x4_1_supernet.yml" \
    -w "$(latest ClassSR_FSRCNN_x4_1_supernet)" -o "$CKPT/classsr_supernet_x4.pth"
fi
if want shared && [ ! -f "$CKPT/classsr_shared_x4.pth" ]; then
  [ -f "$DATA/meta_info_oracle_shared.txt" ] || timed oracle_shared "$CLASSSR" label --data "$DATA" --by oracle \
    -opt "$CKPT/classsr_supernet_x4.pth" --tol "$TOL" -o "$DATA/meta_info_oracle_shared.txt"
  train ClassSR_FSRCNN_x4_2_shared ClassSR_FSRCNN_x4_2_classifier.yml "$N_ROUTER" network_g:share_weights=true \
    "path:pretrain_network_g=$CKPT/classsr_supernet_x4.pth" path:param_key_g=params "${SUPERVISED[@]}" \
    "datasets:train:meta_info=$DATA/meta_info_oracle_shared.txt"
  "$CLASSSR" export -opt "$CFG/ClassSR_FSRCNN_x4_2_classifier.yml" -w "$(latest ClassSR_FSRCNN_x4_2_shared)" \
    -o "$CKPT/classsr_shared_x4.pth" --set network_g.share_weights=true
fi
if want zero; then
  ZERO_BRANCHES=$CKPT/classsr_zero_branches_x4.pth  # the branches, with a fresh four-class classifier
  [ -f "$ZERO_BRANCHES" ] || "$CLASSSR" export -opt "$CFG/ClassSR_FSRCNN_x4_2_classifier.yml" \
    -w "$CKPT/classsr_branches_x4.pth" --set network_g.zero_class=true -o "$ZERO_BRANCHES"
  if [ ! -f "$DATA/meta_info_oracle_zero.txt" ] || [ ! -f "$CKPT/classsr_zero_edge_x4.pth" ]; then
    timed oracle_zero "$CLASSSR" label --data "$DATA" --by oracle -opt "$ZERO_BRANCHES" --tol "$TOL" \
      -o "$DATA/meta_info_oracle_zero.txt" --edge-router "$CKPT/classsr_zero_edge_x4.pth" --score gradient \
      --max-loss "$MAX_LOSS"
  fi
  [ -f "$CKPT/classsr_zero_nested_x4.pth" ] || "$PY" "$REPO/scripts/nest_zero.py" "$CKPT/classsr_edge_x4.pth" \
    "$CKPT/classsr_zero_edge_x4.pth" "$CKPT/classsr_zero_nested_x4.pth"
  ZERO=true phase2 ClassSR_FSRCNN_x4_2_zero_supervised "$CKPT/classsr_zero_supervised_x4.pth" "$N_ROUTER" \
    "${SUPERVISED[@]}" "datasets:train:meta_info=$DATA/meta_info_oracle_zero.txt"
  ZERO=true phase2 ClassSR_FSRCNN_x4_2_zero_paper "$CKPT/classsr_zero_paper_x4.pth" "$N_PAPER" classsr:routing=hard \
    datasets:train:batch_size_per_gpu=32
fi
if want laplacian; then  # the edge routers again, scored by the RMS of the Laplacian; with and without the zero class
  [ -f "$CKPT/classsr_lap_x4.pth" ] || timed oracle_lap "$CLASSSR" label --data "$DATA" --by oracle \
    -opt "$CKPT/classsr_branches_x4.pth" --tol "$TOL" -o "$DATA/meta_info_oracle.txt" \
    --edge-router "$CKPT/classsr_lap_x4.pth" --score laplacian --max-loss "$MAX_LOSS"
  [ -f "$CKPT/classsr_zero_lap_x4.pth" ] || timed oracle_zero_lap "$CLASSSR" label --data "$DATA" --by oracle \
    -opt "$CKPT/classsr_zero_branches_x4.pth" --tol "$TOL" -o "$DATA/meta_info_oracle_zero.txt" \
    --edge-router "$CKPT/classsr_zero_lap_x4.pth" --score laplacian --max-loss "$MAX_LOSS"
  [ -f "$CKPT/classsr_zero_nested_lap_x4.pth" ] || "$PY" "$REPO/scripts/nest_zero.py" "$CKPT/classsr_lap_x4.pth" \
    "$CKPT/classsr_zero_lap_x4.pth" "$CKPT/classsr_zero_nested_lap_x4.pth"
fi
if want photofit; then  # the same one pass per model; only the thresholds' objective differs
  [ -f "$CKPT/classsr_lap_photo_x4.pth" ] || timed oracle_lap_photo "$CLASSSR" label --data "$DATA" --by oracle \
    -opt "$CKPT/classsr_branches_x4.pth" --tol "$TOL" -o "$DATA/meta_info_oracle.txt" \
    --edge-router "$CKPT/classsr_lap_photo_x4.pth" --score laplacian --max-loss "$MAX_LOSS" --fit photo
  [ -f "$CKPT/classsr_zero_lap_photo_x4.pth" ] || timed oracle_zero_lap_photo "$CLASSSR" label --data "$DATA" \
    --by oracle -opt "$CKPT/classsr_zero_branches_x4.pth" --tol "$TOL" -o "$DATA/meta_info_oracle_zero.txt" \
    --edge-router "$CKPT/classsr_zero_lap_photo_x4.pth" --score laplacian --max-loss "$MAX_LOSS" --fit photo
fi
cat logs/walltimes.txt
exit
}
