#!/usr/bin/env bash
# Builds the project's Python environment once per machine and links it as .venv.
#
# The environment lives in a cache keyed by the Python version, the content of
# requirements/*.txt and ENV_REVISION below (bump it when a change to this script must rebuild
# environments), so a second `make setup` (or CI in a fresh clone on the same machine) only
# re-links it. The mmcv wheel, which has to be compiled from source with its
# ops (about 20 minutes on two cores), is cached separately, keyed by (mmcv, torch, python): pip's
# own wheel cache is keyed by the sdist alone and would happily reuse a wheel built against
# another torch.
#
# Environment variables:
#   PYTHON         interpreter to build the venv from (default: python3.11, else python3)
#   MGENET_CACHE   cache root (default: ${XDG_CACHE_HOME:-~/.cache}/mgenet_mm)
#   MAX_JOBS       parallel compile jobs for mmcv (default: number of cores)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQ="$ROOT/requirements"
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
CACHE=${MGENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mgenet_mm}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
mkdir -p "$CACHE"

ENV_REVISION=1

log() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

py_tag=$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
env_key=$( (echo "$ENV_REVISION"; cat "$REQ"/build.txt "$REQ"/torch.txt "$REQ"/mminstall.txt \
              "$REQ"/runtime.txt "$REQ"/tests.txt) | sha256sum | cut -c1-12)
VENV="$CACHE/venv-$py_tag-$env_key"

link_venv() {
    if [ -L "$ROOT/.venv" ] || [ ! -e "$ROOT/.venv" ]; then
        ln -sfn "$VENV" "$ROOT/.venv"
    else
        echo "error: $ROOT/.venv exists and is not a link made by make setup; remove it first" >&2
        exit 1
    fi
}

# One builder at a time per cache (two clones running make setup together).
exec 9>"$CACHE/.lock"
flock 9

if [ -f "$VENV/.complete" ]; then
    link_venv
    log "environment ready (cached): $VENV"
    exit 0
fi

log "building environment $VENV (first run on this machine; later runs reuse it)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip
"${PIP[@]}" install -q -r "$REQ/build.txt"
log "installing torch ($(grep -v '^#' "$REQ/torch.txt" | xargs))"
"${PIP[@]}" install -q -r "$REQ/torch.txt" 'numpy<2'

mmcv_spec=$(grep -E '^mmcv==' "$REQ/mminstall.txt")
mmcv_version=${mmcv_spec#mmcv==}
torch_version=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')
WHEELS="$CACHE/wheels/mmcv-$mmcv_version-torch$torch_version-$py_tag"
if ! ls "$WHEELS"/mmcv-*.whl >/dev/null 2>&1; then
    log "compiling mmcv $mmcv_version with ops against torch $torch_version (about 20 min on 2 cores)"
    build=$(mktemp -d)
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$build" "$mmcv_spec"
    tar -xzf "$build"/mmcv-"$mmcv_version".tar.gz -C "$build"
    src="$build/mmcv-$mmcv_version"
    # mmcv 2.1.0's setup.py forces -std=c++17 for torch > 1.12, but torch >= 2.14 headers need
    # C++20 (mmcv's own sources compile at C++20).
    if "$VENV/bin/python" -c 'import sys, torch; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); sys.exit(0 if v >= (2, 14) else 1)'; then
        sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    fi
    MMCV_WITH_OPS=1 "${PIP[@]}" wheel --no-deps --no-build-isolation -w "$build/dist" "$src"
    mkdir -p "$WHEELS.partial"
    cp "$build"/dist/mmcv-*.whl "$WHEELS.partial/"
    rm -rf "$WHEELS" && mv "$WHEELS.partial" "$WHEELS"
    rm -rf "$build"
    log "mmcv wheel cached in $WHEELS"
fi
log "installing the OpenMMLab packages and runtime dependencies"
"${PIP[@]}" install -q -r "$REQ/runtime.txt" -r "$REQ/tests.txt" 'numpy<2'
"${PIP[@]}" install -q --no-deps "$WHEELS"/mmcv-*.whl \
    $(grep -E '^mm' "$REQ/mminstall.txt" | grep -v '^mmcv==')
"$VENV/bin/python" - <<'PY'
import mmcv.ops  # noqa: F401  compiled ops present
import mmengine, mmaction, mmdet, mmpose, torch, torchvision, numpy
print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'numpy', numpy.__version__,
      'mmcv', mmcv.__version__, 'mmengine', mmengine.__version__, 'mmaction', mmaction.__version__,
      'mmdet', mmdet.__version__, 'mmpose', mmpose.__version__)
PY
touch "$VENV/.complete"
link_venv
log "environment ready: $VENV"
