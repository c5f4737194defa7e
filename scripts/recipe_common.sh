# Shared by the recipe scripts (sourced, not run): paths, timing, BasicSR training with the
# recipes' overrides, and parking a training run's newest state in $CKPT so that a later
# session (a fresh clone) resumes a long step where this one stopped.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN=${RUN:-$REPO/results/weights_run}     # photos, sub-images, experiments, logs (large, not committed)
CKPT=${CKPT:-$REPO/scripts/checkpoints}   # each step's small product (committed, so a later session resumes)
PY=$REPO/.venv/bin/python
CLASSSR=$REPO/.venv/bin/classsr
CFG=$REPO/configs/basicsr
NUM_GPU=${NUM_GPU:-0}
DATA=$RUN/data/${DATA_NAME:-train_x4}           # training sub-images
HELDOUT=$RUN/data/${HELDOUT_NAME:-heldout_x4}  # whole held-out pairs (hr/, lr/)
mkdir -p "$RUN/logs" "$CKPT"
cd "$RUN"
want() { [[ " $STEPS " == *" $1 "* ]]; }
timed() {  # $1 = label, rest = command; appends the wall time to logs/walltimes.txt
  local label=$1; shift
  local t0; t0=$(date +%s)
  "$@" >> "logs/$label.out" 2>&1
  echo "$label $(( $(date +%s) - t0 )) s (finished $(date '+%F %T'))" | tee -a logs/walltimes.txt
}
# BasicSR overrides of every training: iterations, schedule, no validation (held-out photos are
# evaluated once, at the end, by classsr eval), one checkpoint every $SAVE_EVERY iterations for resuming
train() {  # $1 = name, $2 = config, $3 = iterations, rest = more overrides
  local name=$1 cfg=$2 n=$3; shift 3
  unpark "$name"
  timed "$name" "$CLASSSR" train -opt "$CFG/$cfg" --auto_resume --force_yml name="$name" num_gpu=$NUM_GPU \
    "train:total_iter=$n" "train:scheduler:periods=[$n]" val:val_freq=1000000000 \
    "logger:save_checkpoint_freq=${SAVE_EVERY:-2000}" \
    logger:use_tb_logger=false datasets:train:num_worker_per_gpu=1 "datasets:train:dataroot=$DATA" \
    "datasets:val:dataroot_gt=$HELDOUT/hr" "datasets:val:dataroot_lq=$HELDOUT/lr" "$@"
}
latest() { echo "$RUN/experiments/$1/models/net_g_latest.pth"; }
# the newest training state's iteration of an experiment folder, empty when it has none (a fresh
# clone has no folder: ls fails, which must not end a `set -e -o pipefail` recipe)
newest_state() { { ls "$1/training_states" 2>/dev/null || true; } | sed -n 's/^\([0-9]*\)\.state$/\1/p' | sort -n | tail -1; }
# park NAME: copy the run's newest training state and its network into $CKPT/NAME.partial/ (for a
# commit); unpark NAME: put them back where --auto_resume looks, when this machine has none newer
park() {
  local name=$1 exp=$RUN/experiments/$1 it
  it=$(newest_state "$exp")
  [ -n "$it" ] || { echo "park $name: no training state yet"; return 0; }
  rm -rf "$CKPT/$name.partial.tmp" && mkdir -p "$CKPT/$name.partial.tmp"
  cp "$exp/training_states/$it.state" "$exp/models/net_g_$it.pth" "$CKPT/$name.partial.tmp/"
  rm -rf "$CKPT/$name.partial" && mv "$CKPT/$name.partial.tmp" "$CKPT/$name.partial"
  echo "park $name: iteration $it -> $CKPT/$name.partial"
}
unpark() {
  local name=$1 src=$CKPT/$1.partial exp=$RUN/experiments/$1 it
  [ -d "$src" ] || return 0
  it=$(ls "$src" | sed -n 's/^\([0-9]*\)\.state$/\1/p')
  [ -n "$it" ] || return 0
  [ -f "$exp/training_states/$it.state" ] && return 0
  local have; have=$(newest_state "$exp")
  [ -n "$have" ] && [ "$have" -ge "$it" ] && return 0
  mkdir -p "$exp/training_states" "$exp/models"
  cp "$src/$it.state" "$exp/training_states/" && cp "$src/net_g_$it.pth" "$exp/models/"
  echo "unpark $name: resuming from the parked iteration $it"
}
# parked NAME CMD...: run CMD (a long training and its export) with run NAME parked whatever stops
# it (a kill, the end of a session), and the parked copy dropped once CMD has finished
parked() {
  local name=$1; shift
  trap "park $name" EXIT
  "$@"
  trap - EXIT
  rm -rf "$CKPT/$name.partial"
}
# kept FILE [NAME]: a step's product that lives beside the data and is committed as $CKPT/NAME
# too (default: FILE's name): copied into $CKPT when present, back from it when missing (a fresh clone)
kept() {
  local copy=$CKPT/${2:-$(basename "$1")}
  if [ -f "$1" ]; then cp "$1" "$copy"; elif [ -f "$copy" ]; then cp "$copy" "$1"; fi
}
