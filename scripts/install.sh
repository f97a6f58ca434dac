#!/usr/bin/env bash
# astrodet's one install step: a project virtual environment with torch, Detectron2, MMDetection (mmcv compiled
# with its CPU ops) and astrodet itself. Idempotent: every step first checks whether its result is already there
# and skips if so, so a second run re-installs nothing. Stops at the first failure and names the failing step.
#
# Environment knobs (all optional):
#   PYTHON                python used to create the venv (default: python3)
#   ASTRODET_VENV         venv location (default: <repo>/.venv)
#   ASTRODET_CACHE        wheel cache shared by every clone on this machine (default: ~/.cache/astrodet)
#   ASTRODET_TORCH_SPEC   pip spec for torch (default: "torch==2.14.1 torchvision==0.29.1", what this machine
#                         serves; a GPU user may set e.g. "torch torchvision" with their CUDA index)
#   ASTRODET_D2_ROUTE     auto | upstream | pypi   (default auto: upstream git when GitHub answers, else pypi)
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ASTRODET_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
CACHE="${ASTRODET_CACHE:-$HOME/.cache/astrodet}"
TORCH_SPEC="${ASTRODET_TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
D2_ROUTE="${ASTRODET_D2_ROUTE:-auto}"
D2_GIT="https://github.com/facebookresearch/detectron2.git"
D2_PYPI_SPEC="sal-detectron2==0.7.2"
D2_PYPI_FILE="sal_detectron2-0.7.2-cp310-none-any.whl"
D2_PYPI_SHA256="491af0c7f79bdb2d178e46f6cb16a97c4ac968d45c41ea3f6b6435d59bbee561"
MMCV_VERSION="2.1.0"
SAHI_VERSION="0.12.8"
RAY_VERSION="2.60.0"
LIGHTLY_VERSION="1.6.0"
SKLEARN_VERSION="1.9.1"
STATE="$VENV/astrodet-install.env"
NSTEPS=7
CURRENT="start"
T0=$SECONDS

trap 'echo "[astrodet install] FAILED in step: $CURRENT (see the output above)" >&2' ERR

step() { CURRENT="$2"; echo "[astrodet install] step $1/$NSTEPS: $2"; }
skip() { echo "[astrodet install]   already done: $1"; }
pip_install() { "$PY" -m pip install --disable-pip-version-check --no-input "$@"; }
record() {  # record KEY VALUE: keep one line per key in the state file (written atomically)
    local tmp="$STATE.tmp.$$"
    { [ -f "$STATE" ] && grep -v "^$1=" "$STATE" || true; echo "$1=$2"; } >"$tmp"
    mv -f "$tmp" "$STATE"
}
py_ok() { "$PY" - >/dev/null 2>&1 <<<"$1"; }

# ---------------------------------------------------------------------------------------------------------------
step 1 "virtual environment at $VENV"
if [ -x "$PY" ]; then skip "venv exists"; else "${PYTHON:-python3}" -m venv "$VENV"; fi

step 2 "build tools (pip, setuptools 80.9.0 with pkg_resources, wheel, ninja)"
if py_ok 'import setuptools, wheel, ninja, pkg_resources; assert setuptools.__version__ == "80.9.0"'; then
    skip "setuptools 80.9.0, wheel, ninja"
else
    pip_install --upgrade pip
    pip_install "setuptools==80.9.0" wheel ninja
fi

step 3 "torch ($TORCH_SPEC)"
if py_ok 'import torch, torchvision; torchvision.ops.nms'; then
    skip "torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
    # shellcheck disable=SC2086  # the spec is a list of requirements
    pip_install $TORCH_SPEC "setuptools==80.9.0"
fi
TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__)')"
record torch "$TORCH_VERSION"

step 4 "mmcv $MMCV_VERSION with compiled ops, mmengine 0.10.7, mmdet 3.3.0"
# mmcv, mmengine and mmdet are installed with --no-deps and their runtime needs named explicitly: their metadata
# asks for opencv-python (GUI build), which would clash with the headless OpenCV everything else uses.
MM_DEPS=(addict packaging Pillow pyyaml yapf rich termcolor "numpy" matplotlib scipy shapely six terminaltables
         tqdm "pycocotools>=2.0.7" opencv-python-headless)
if py_ok "import mmcv, mmengine, mmdet, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'"; then
    skip "mmcv $MMCV_VERSION, mmengine, mmdet"
else
    pip_install "${MM_DEPS[@]}"
    pip_install --no-deps "mmengine==0.10.7" "mmdet==3.3.0"
    # The compiled wheel depends on the torch it was built against and on CUDA visibility: key the cache on both.
    CUDA_TAG="$("$PY" -c 'import torch; print("cu" if (torch.cuda.is_available() or __import__("os").environ.get("FORCE_CUDA")=="1") else "cpu")')"
    WHEELHOUSE="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$CUDA_TAG"
    if ! ls "$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
        echo "[astrodet install]   compiling mmcv $MMCV_VERSION ops from source (about 5-10 minutes on 2 cores)"
        BUILD_DIR="$(mktemp -d)"
        CXX="$ROOT/scripts/cxx20.sh" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
            "$PY" -m pip wheel --disable-pip-version-check --no-build-isolation --no-deps \
            -w "$BUILD_DIR" "mmcv==$MMCV_VERSION"
        mkdir -p "$WHEELHOUSE"
        # Move into place only when complete, so an interrupted build never leaves a half wheel in the cache.
        for w in "$BUILD_DIR"/mmcv-*.whl; do mv -f "$w" "$WHEELHOUSE/.$(basename "$w").part" &&
            mv -f "$WHEELHOUSE/.$(basename "$w").part" "$WHEELHOUSE/$(basename "$w")"; done
        rm -rf "$BUILD_DIR"
    else
        echo "[astrodet install]   reusing cached mmcv wheel from $WHEELHOUSE"
    fi
    pip_install --no-deps "$WHEELHOUSE"/mmcv-"$MMCV_VERSION"-*.whl
    py_ok "import mmcv.ops; import mmdet.models" || { echo "mmcv ops or mmdet.models fail to import" >&2; false; }
fi

step 5 "detectron2 (route: $D2_ROUTE)"
D2_DEPS=("fvcore>=0.1.5.post20221221" "iopath>=0.1.7,<0.1.10" "omegaconf>=2.1,<2.4" "hydra-core>=1.1" tabulate
         termcolor yacs cloudpickle matplotlib tensorboard "pycocotools>=2.0.7" Pillow)
if py_ok 'import detectron2, detectron2.layers, detectron2.modeling'; then
    skip "detectron2 ($(grep '^detectron2_route=' "$STATE" 2>/dev/null | cut -d= -f2- || echo unrecorded) route)"
else
    route="$D2_ROUTE"
    if [ "$route" = auto ]; then
        if timeout 20 git ls-remote --exit-code "$D2_GIT" HEAD >/dev/null 2>&1; then route=upstream; else route=pypi; fi
        echo "[astrodet install]   GitHub $([ "$route" = upstream ] && echo reachable || echo unreachable): using the $route route"
    fi
    pip_install "${D2_DEPS[@]}"
    if [ "$route" = upstream ]; then
        if CXX="$ROOT/scripts/cxx20.sh" pip_install --no-build-isolation --no-deps "git+$D2_GIT"; then
            record detectron2_route upstream
        else
            echo "[astrodet install]   upstream detectron2 build failed; falling back to the PyPI republication" >&2
            route=pypi
        fi
    fi
    if [ "$route" = pypi ]; then
        DL="$CACHE/downloads"
        mkdir -p "$DL"
        if [ ! -f "$DL/$D2_PYPI_FILE" ]; then
            TMPDL="$(mktemp -d)"
            "$PY" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.10 \
                --implementation cp -d "$TMPDL" "$D2_PYPI_SPEC"
            mv -f "$TMPDL/$D2_PYPI_FILE" "$DL/$D2_PYPI_FILE"
            rm -rf "$TMPDL"
        fi
        echo "$D2_PYPI_SHA256  $DL/$D2_PYPI_FILE" | sha256sum --check --quiet ||
            { echo "sha256 mismatch for $DL/$D2_PYPI_FILE (expected $D2_PYPI_SHA256)" >&2; rm -f "$DL/$D2_PYPI_FILE"; false; }
        # The file's code is pure Python (FAIR's commit a59f0563); only its _C binary is CPython-3.10-specific.
        # Re-tag it so pip accepts it on this Python, then replace _C with astrodet's pure-Python stand-in.
        RETAG="$(mktemp -d)"
        cp "$DL/$D2_PYPI_FILE" "$RETAG/sal_detectron2-0.7.2-py3-none-any.whl"
        pip_install --no-deps --force-reinstall "$RETAG/sal_detectron2-0.7.2-py3-none-any.whl"
        rm -rf "$RETAG"
        D2_DIR="$("$PY" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("detectron2").origin))')"
        rm -f "$D2_DIR"/_C*.so
        cp "$ROOT/scripts/detectron2_C_standin.py" "$D2_DIR/_C.py"
        record detectron2_route "pypi ($D2_PYPI_SPEC, sha256 $D2_PYPI_SHA256, _C stand-in)"
    fi
    py_ok 'import detectron2.layers, detectron2.modeling, detectron2.engine' ||
        { echo "detectron2 installed but does not import" >&2; false; }
fi

step 6 "astrodet itself (editable, with test and lint tools), sahi, ray[data], lightly, scikit-learn"
PYPROJECT_SUM="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ -f "$VENV/.astrodet-pyproject.sha256" ] && [ "$(cat "$VENV/.astrodet-pyproject.sha256")" = "$PYPROJECT_SUM" ] &&
    py_ok 'import astrodet'; then
    skip "astrodet (pyproject.toml unchanged)"
else
    pip_install --no-build-isolation -e "$ROOT[dev]"
    echo "$PYPROJECT_SUM" >"$VENV/.astrodet-pyproject.sha256"
fi
# sahi (tiling for astrodet predict) goes in with --no-deps: its metadata asks for the GUI opencv-python, which would
# clash with opencv-python-headless; what it really needs (numpy, Pillow, shapely, tqdm, pyyaml) astrodet depends on.
if py_ok "import sahi.slicing, sahi.postprocess.combine; assert sahi.__version__ == '$SAHI_VERSION'"; then
    skip "sahi $SAHI_VERSION"
else
    pip_install --no-deps "sahi==$SAHI_VERSION"
fi
# Ray Data (the astrodet[ray] extra) for `astrodet predict --engine ray`; numpy pinned to what is installed, so that
# Ray's requirements never move it. Ray needs no torch; naming torch here would make pip re-resolve it, and its local
# version (+cu130) clashes with a machine's pip constraint file (this one's pins torch<=2.14.1).
if py_ok "import ray, ray.data; assert ray.__version__ == '$RAY_VERSION'"; then
    skip "ray[data] $RAY_VERSION"
else
    NUMPY_VERSION="$("$PY" -c 'import numpy; print(numpy.__version__)')"
    pip_install "ray[data]==$RAY_VERSION" "numpy==$NUMPY_VERSION"
fi
# lightly (the astrodet[pretrain] extra) for tools/pretrain.py, with --no-deps: the losses, heads and schedules astrodet
# imports need only torch and numpy, while its metadata also asks for PyTorch Lightning (with torchmetrics and
# aiohttp), which astrodet never imports; without it pip also leaves torch and numpy as they are.
if py_ok "import lightly.loss, lightly.models.modules, lightly.utils.scheduler; assert lightly.__version__ == '$LIGHTLY_VERSION'"; then
    skip "lightly $LIGHTLY_VERSION"
else
    pip_install --no-deps "lightly==$LIGHTLY_VERSION"
fi
# scikit-learn (the astrodet[baseline] extra) for tools/catalogue_baseline.py; numpy pinned to what is installed, as
# for Ray, so that its requirements never move it (it needs no torch).
if py_ok "import sklearn.ensemble; assert sklearn.__version__ == '$SKLEARN_VERSION'"; then
    skip "scikit-learn $SKLEARN_VERSION"
else
    NUMPY_VERSION="$("$PY" -c 'import numpy; print(numpy.__version__)')"
    pip_install "scikit-learn==$SKLEARN_VERSION" "numpy==$NUMPY_VERSION"
fi

step 7 "check"
"$PY" - <<'EOF'
import detectron2, mmcv, mmdet, mmengine, torch, torchvision
import astrodet
print(f"[astrodet install]   torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"detectron2 {detectron2.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, "
      f"mmdet {mmdet.__version__}, astrodet {astrodet.__version__}")
EOF
record last_checked "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "[astrodet install] done in $((SECONDS - T0)) s; venv size $(du -sh "$VENV" | cut -f1); state in $STATE"
