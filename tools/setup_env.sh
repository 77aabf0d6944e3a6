#!/usr/bin/env bash
# Builds the project's Python environment once per machine and gives the checkout .venv, its own
# interpreter over that environment, in which this checkout's mgenet_mm is importable.
#
# The environment lives in a cache keyed by the Python version, the content of
# requirements/*.txt and ENV_REVISION below (bump it when a change to this script must rebuild
# environments), so a second `make setup` (or CI in a fresh clone on the same machine) only
# re-checks .venv. The mmcv wheel, which has to be compiled from source with its
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

# .venv is a small venv of this checkout (no pip; made in a fraction of a second) from the
# shared environment's base interpreter. One .pth file in its site-packages puts this checkout's
# root on sys.path and then adds the shared environment's site-packages with site.addsitedir, so
# that the .pth files there run too. `import mgenet_mm` so resolves to the checkout that .venv
# lives in, also when several checkouts share one cached environment (CI's fresh clone beside a
# developer's), which a link to the shared environment or an install into it cannot give. The
# root is written relative to site-packages, so a copied or moved checkout imports itself.
THIN="$ROOT/.venv"
THIN_MARK="$THIN/mgenet_mm_env"  # holds $VENV; tells our .venv from a directory made by hand
THIN_PTH=_mgenet_mm_env.pth

# Whether .venv is ours, over $VENV and its base interpreter, and resolves mgenet_mm to this
# checkout and torch to $VENV (find_spec: nothing is imported). -I: PYTHONPATH does not count.
thin_venv_ok() {
    [ -x "$THIN/bin/python" ] && [ "$(cat "$THIN_MARK" 2>/dev/null)" = "$VENV" ] &&
        [ "$(grep -s '^home' "$THIN/pyvenv.cfg")" = "$(grep '^home' "$VENV/pyvenv.cfg")" ] &&
        "$THIN/bin/python" -I - "$ROOT" "$VENV" <<'PY'
import importlib.util, os, sys
root, shared = sys.argv[1:]
ours = importlib.util.find_spec('mgenet_mm')
torch = importlib.util.find_spec('torch')
sys.exit(0 if ours and ours.origin and torch and torch.origin
         and os.path.samefile(os.path.dirname(ours.origin), os.path.join(root, 'mgenet_mm'))
         and os.path.realpath(torch.origin).startswith(os.path.realpath(shared) + os.sep)
         else 1)
PY
}

link_venv() {
    if [ -L "$THIN" ]; then
        rm -f "$THIN"  # the link to the shared environment that make setup made before
    elif [ -e "$THIN" ] && [ ! -f "$THIN_MARK" ]; then
        echo "error: $THIN exists and was not made by make setup; remove it first" >&2
        exit 1
    fi
    if thin_venv_ok; then
        log "checkout interpreter $THIN (reused)"
        return
    fi
    rm -rf "$THIN"
    mkdir "$THIN"
    : >"$THIN_MARK"  # ours from here on: an interrupted run is redone, not refused
    # From a venv's python, venv builds on the base interpreter (sys._base_executable).
    "$VENV/bin/python" -m venv --without-pip "$THIN"
    "$THIN/bin/python" -I - "$ROOT" "$VENV" "$THIN_PTH" <<'PY'
import os, sys, sysconfig
root, shared, name = sys.argv[1:]
own = sysconfig.get_paths()['purelib']  # .venv's site-packages
shared_dirs = dict.fromkeys(sysconfig.get_paths(vars=dict(base=shared, platbase=shared))[key]
                            for key in ('purelib', 'platlib'))
lines = ['# make setup: this checkout first, then the shared environment (tools/setup_env.sh)',
         os.path.relpath(root, own)]
lines += [f'import site; site.addsitedir({path!r})' for path in shared_dirs if os.path.isdir(path)]
with open(os.path.join(own, name), 'w') as f:
    f.write('\n'.join(lines) + '\n')
PY
    echo "$VENV" >"$THIN_MARK"
    thin_venv_ok || { echo "error: $THIN does not import this checkout's mgenet_mm" >&2; exit 1; }
    log "checkout interpreter $THIN (created)"
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
