#!/usr/bin/env bash
# Install mmcv 2.1.0 with its compiled ops (mmcv._ext, CPU only) into the virtualenv of PYTHON,
# built for the torch installed there. MMagic 1.2.0 accepts mmcv < 2.2; 2.1.0 comes only as a
# source distribution, which does not build here as published, for two reasons:
#   - its setup.py imports pkg_resources: the build runs with setuptools < 70, put on
#     PYTHONPATH for the build only (the virtualenv's own setuptools stays as it is);
#   - it compiles with -std=c++14 (-std=c++17 on some paths), and torch >= 2.10's headers stop
#     with `#error C++20 or later compatible compiler is required`: we raise both flags in the
#     unpacked setup.py to -std=c++20 (the only edit of mmcv's source).
# It compiles without debug information (CFLAGS=-g0 after Python's own -g): half the compile
# time (nms.cpp: 22 s of CPU instead of 44 s) and objects 70x smaller; nothing else changes.
# The wheel is kept in $CLASSSR_WHEEL_CACHE (default ~/.cache/classsr-plugin/wheels), keyed by
# mmcv, torch and Python versions, so a second set-up on the same machine installs it in seconds.
#
#   scripts/build_mmcv.sh .venv-mmagic/bin/python        (`make mmagic-env` runs this)
#   MAX_JOBS=2 (default: the number of cores) sets the parallel compile jobs.
set -euo pipefail
PY=${1:?usage: scripts/build_mmcv.sh PATH/TO/VENV/bin/python}
[[ $PY == */* ]] || PY=$(command -v "$PY")
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")  # absolute, not resolved: a venv's python is a link
MMCV_VERSION=${MMCV_VERSION:-2.1.0}
CACHE=${CLASSSR_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/classsr-plugin/wheels}

fail() { echo "build_mmcv.sh: $*" >&2; exit 1; }
TORCH=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])') \
  || fail "torch is not importable with $PY: install torch first"
PYV=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
KEY=$CACHE/mmcv-$MMCV_VERSION-torch-$TORCH-$PYV-cpu
WHEEL=$(ls "$KEY"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)

if [[ -z $WHEEL ]]; then
  command -v g++ >/dev/null || fail "no C++ compiler (g++) on PATH; mmcv's ops need one (apt-get install g++)"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/build_mmcv.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  echo "build_mmcv.sh: building mmcv $MMCV_VERSION with CPU ops for torch $TORCH ($PYV); this takes" \
       "about 15 minutes on 2 cores, once per machine (cache: $KEY)"
  t0=$(date +%s)
  "$PY" -m pip install --target "$WORK/buildtools" "setuptools<70" wheel ninja \
    || fail "could not install the build tools (setuptools<70, wheel, ninja)"
  export PYTHONPATH=$WORK/buildtools PATH=$WORK/buildtools/bin:$PATH
  # pip reads the sdist's metadata (setup.py) as it downloads: with the build tools above too
  "$PY" -m pip download --no-deps --no-binary :all: --no-build-isolation -d "$WORK" "mmcv==$MMCV_VERSION" \
    || fail "could not download mmcv $MMCV_VERSION's source from the package index"
  tar -xzf "$WORK"/mmcv-"$MMCV_VERSION".tar.gz -C "$WORK"
  SRC=$WORK/mmcv-$MMCV_VERSION
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
  grep -q -- '-std=c++20' "$SRC/setup.py" || fail "mmcv's setup.py has no -std flag to raise any more: check it"
  (cd "$SRC" && CFLAGS="${CFLAGS:-} -g0" MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
     "$PY" -m pip wheel --no-build-isolation --no-deps -w "$WORK/dist" . > "$WORK/build.log" 2>&1) || {
    tail -n 40 "$WORK/build.log" >&2
    fail "mmcv $MMCV_VERSION's ops did not build against torch $TORCH (the last lines of the log are above)"
  }
  unset PYTHONPATH
  mkdir -p "$KEY"
  BUILT=$(ls "$WORK"/dist/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)
  cp "$BUILT" "$KEY/.part" && mv "$KEY/.part" "$KEY/$(basename "$BUILT")"  # whole or not at all
  WHEEL=$KEY/$(basename "$BUILT")
  echo "build_mmcv.sh: built $(basename "$WHEEL") in $(( $(date +%s) - t0 )) s"
fi
"$PY" -m pip uninstall -y mmcv-lite >/dev/null 2>&1 || true
"$PY" -m pip install --no-deps --force-reinstall "$WHEEL"
"$PY" -c 'import mmcv._ext, mmcv.ops' || fail "the installed mmcv has no working ops: remove $KEY and run again"
echo "build_mmcv.sh: mmcv $MMCV_VERSION with ops installed from $WHEEL"
