#!/usr/bin/env bash
# CPU training run: ClassSR-FSRCNN x4 (all three phases) next to plain FSRCNN (d=56) on real photos.
#
# What it does (the recipe of the shipped weights; `make weights` runs it, then exports):
#   0. If the HR folders do not exist yet, collect the photos (offline): natural photos from the
#      Debian package opencv-doc (/usr/share/doc/opencv-doc/examples/data) and scikit-image's
#      bundled photos. Charts, text, chessboards, synthetic renders, gray calibration shots, images
#      under 256 px and near-duplicates (aloeR, leuvenB, ela_modified, rubberwhale2, right,
#      motorcycle right view) are left out. Validation hold-out: baboon, building, squirrel_cls,
#      skimage coffee.
#   1. Data: difficulty-ranked sub-images (bicubic PSNR, 3 classes, scales 1/0.8/0.6, LR tile 32,
#      stride 16) for training; whole-image bicubic LR/HR pairs for validation.
#   2. FSRCNN (d=56) on all sub-images, configs/basicsr/FSRCNN_x4_baseline.yml, N0 iterations: the
#      pretrained base ClassSR starts from. FSRCNN-O, the reference, is the same network trained on
#      for N1+N2+N3 more iterations, so both have seen the same number of iterations.
#   3. ClassSR-FSRCNN as in the paper: phase 1 starts the widest branch from FSRCNN-O and the
#      narrow ones from its leading channels (init_narrow: slice), each fine-tuned on its class;
#      phase 2 trains the classifier (its model ships); phase 3 fine-tunes everything, once with
#      the paper's soft routing and once with `routing: hard`. The unchanged
#      configs/basicsr/ClassSR_FSRCNN_x4_*.yml with --force_yml overrides only.
#   Wall time of every step goes to $RUN/logs/walltimes.txt; stdout/stderr to $RUN/logs/*.out;
#   BasicSR's logs to $RUN/experiments/<name>/train_<name>_*.log.
#
# Usage: scripts/cpu_run_fsrcnn.sh [HR_TRAIN_DIR] [HR_VAL_DIR]
#   FROM=phase2 scripts/cpu_run_fsrcnn.sh   continues at a step (data|baseline|phase1|phase2|phase3|phase3_hard|reference)
#   N0=.. N1=.. N2=.. N3=.. set the iterations; on a GPU with DIV2K pass its HR folders, raise them
#   and set NUM_GPU=1.
#   Needs: apt-get install -y opencv-doc (for step 0 only) and the repo's .venv.
#
# History: the first CPU run (README, "short CPU run") used this script at commit e4b0173, where
# phase 1 started every branch from scratch and the classifier was the paper's nf 128 module.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUN=${RUN:-/work/cpu_run}                      # work folder: data, experiments, logs
HR_TRAIN=${1:-$RUN/hr_train}
HR_VAL=${2:-$RUN/hr_val}
PY=$REPO/.venv/bin/python
CLASSSR=$REPO/.venv/bin/classsr
CFG=$REPO/configs/basicsr
CV_DATA=/usr/share/doc/opencv-doc/examples/data

# iterations (CPU defaults, chosen from measured s/iter on the shared 2-core machine)
N0=${N0:-7000}   # FSRCNN-O, batch 16
N1=${N1:-9000}   # phase 1, branches, batch 16
N2=${N2:-1000}   # phase 2, classifier, batch 32
N3=${N3:-500}    # phase 3, joint, batch 32
B23=32
NUM_GPU=${NUM_GPU:-0}   # 0: CPU; on a GPU machine NUM_GPU=1 (or 'auto')
BASE=$RUN/experiments/FSRCNN_x4_baseline/models/net_g_latest.pth

# overrides common to all four trainings (val and checkpoint only at the end of each run)
common() {  # $1 = total_iter -> array COMMON
  COMMON=("num_gpu=$NUM_GPU" "train:total_iter=$1" "train:scheduler:periods=[$1]" "val:val_freq=$1"
          "logger:save_checkpoint_freq=$1" logger:use_tb_logger=false datasets:train:num_worker_per_gpu=1)
}

FROM=${FROM:-data}
STEPS=(data baseline phase1 phase2 phase3 phase3_hard reference)
run_step() {  # true when step $1 is at or after $FROM
  local s seen=0
  for s in "${STEPS[@]}"; do
    [ "$s" = "$FROM" ] && seen=1
    [ "$s" = "$1" ] && return $((1 - seen))
  done
  echo "FROM=$FROM: not one of ${STEPS[*]}" >&2; exit 2
}

mkdir -p "$RUN/logs"
cd "$RUN"
echo "FSRCNN=$N0,phase1=$N1,phase2=$N2,phase3=$N3,FSRCNN-O=$((N0 + N1 + N2 + N3))" > logs/iterations.txt
timed() {  # $1 = label, rest = command; appends the wall time to logs/walltimes.txt
  local label=$1; shift
  local t0; t0=$(date +%s.%N)
  "$@" > "logs/$label.out" 2>&1
  local t1; t1=$(date +%s.%N)
  printf '%s %.1f s (start %s)\n' "$label" "$(awk "BEGIN{print $t1 - $t0}")" "$(date -d @"${t0%.*}" '+%F %T')" \
    | tee -a logs/walltimes.txt
}

# --- 0. photos ---------------------------------------------------------------------------------
if [ ! -d "$HR_TRAIN" ] || [ ! -d "$HR_VAL" ]; then
  mkdir -p "$HR_TRAIN" "$HR_VAL"
  for f in aero1.jpg aero3.jpg aloeL.jpg apple.jpg board.jpg butterfly.jpg ela_original.jpg \
           fruits.jpg home.jpg leuvenA.jpg messi5.jpg orange.jpg left.jpg rubberwhale1.png \
           smarties.png stuff.jpg graf1.png chicky_512.png; do
    cp "$CV_DATA/$f" "$HR_TRAIN/"
  done
  for f in baboon.jpg building.jpg squirrel_cls.jpg; do cp "$CV_DATA/$f" "$HR_VAL/"; done
  HR_TRAIN=$HR_TRAIN HR_VAL=$HR_VAL "$PY" - <<'EOF'
import os, cv2, skimage.data as d
def w(folder, name, rgb):
    assert cv2.imwrite(os.path.join(os.environ[folder], name), rgb[:, :, ::-1])
w("HR_TRAIN", "skimage_astronaut.png", d.astronaut())
w("HR_TRAIN", "skimage_chelsea.png", d.chelsea())
w("HR_TRAIN", "skimage_rocket.png", d.rocket())
w("HR_TRAIN", "skimage_motorcycle_left.png", d.stereo_motorcycle()[0])
w("HR_VAL", "skimage_coffee.png", d.coffee())
EOF
fi

# --- 1. data -----------------------------------------------------------------------------------
if run_step data; then
timed prepare_train "$CLASSSR" prepare --hr "$HR_TRAIN" --out "$RUN/datasets/classsr_x4" --scale 4 --classes 3 \
  --scales 1,0.8,0.6 --tile 32 --stride 16
timed prepare_val "$CLASSSR" prepare --whole --hr "$HR_VAL" --out "$RUN/datasets/classsr_val_x4"
fi

# --- 2. FSRCNN d=56, the pretrained base ------------------------------------------------------
if run_step baseline; then
common $N0
timed FSRCNN_x4_baseline "$CLASSSR" train -opt "$CFG/FSRCNN_x4_baseline.yml" --force_yml "${COMMON[@]}"
fi

# --- 3. ClassSR-FSRCNN, three phases -----------------------------------------------------------
# phase 2 and 3 load the previous phase's net_g_latest.pth (path.pretrain_network_g in the configs)
if run_step phase1; then
common $N1
timed ClassSR_FSRCNN_x4_1_branches "$CLASSSR" train -opt "$CFG/ClassSR_FSRCNN_x4_1_branches.yml" \
  --force_yml "${COMMON[@]}" "classsr:init_base=$BASE" classsr:init_narrow=slice
fi
if run_step phase2; then
common $N2
timed ClassSR_FSRCNN_x4_2_classifier "$CLASSSR" train -opt "$CFG/ClassSR_FSRCNN_x4_2_classifier.yml" \
  --force_yml "${COMMON[@]}" datasets:train:batch_size_per_gpu=$B23
fi
if run_step phase3; then
common $N3
timed ClassSR_FSRCNN_x4_3_joint "$CLASSSR" train -opt "$CFG/ClassSR_FSRCNN_x4_3_joint.yml" \
  --force_yml "${COMMON[@]}" datasets:train:batch_size_per_gpu=$B23
fi

if run_step phase3_hard; then   # the same phase 3 with routing: hard (argmax branch, as at inference)
common $N3
timed ClassSR_FSRCNN_x4_3_joint_hard "$CLASSSR" train -opt "$CFG/ClassSR_FSRCNN_x4_3_joint.yml" \
  --force_yml "${COMMON[@]}" datasets:train:batch_size_per_gpu=$B23 name=ClassSR_FSRCNN_x4_3_joint_hard \
  classsr:routing=hard
fi

# --- 4. FSRCNN-O: the reference, as many iterations as ClassSR ----------------------------------
if run_step reference; then
common $((N1 + N2 + N3))
timed FSRCNN_x4_O "$CLASSSR" train -opt "$CFG/FSRCNN_x4_baseline.yml" --force_yml "${COMMON[@]}" \
  name=FSRCNN_x4_O "path:pretrain_network_g=$BASE"
fi

grep -h -E "Validation classsr_val_x4:|# (psnr|psnr_y|ssim|ssim_y):" experiments/*/train_*.log || true
cat logs/walltimes.txt
