#!/usr/bin/env bash
# A GPU machine's work in few commands, each within a lent device's limits (one GPU, 10 minutes a
# command, 64 MiB of files carried per call), prepared so that the device's minutes go to measuring
# and training, not setting up.
#
#   ./scripts/gpu_session.sh prepare       # here, once: wheels the GPU image lacks + training photos
#                                           # -> .gpu/ (git-ignored, about 60 MB)
# then two device calls, one after the other (the machine stays warm between them):
#   run(command="bash scripts/gpu_session.sh check", carry=[".gpu/av", ".gpu/vs"], timeout_s=420)
#   run(command="bash scripts/gpu_session.sh train [CONFIG]", carry=[".gpu/av", ".gpu/photos"], timeout_s=590)
#   (with RESUME, below, carry ".gpu/resume" too: about 61 MB in all with the tree, under the 64 MiB limit)
# and give_back. `check` runs the GPU tests and the benchmarks and prints their tables; `train`
# trains for run.max_minutes (training/configs/CONFIG.toml, default compact_x4_gpu_context, which
# trains the bundled model further), evaluates the result on the held-out photos, runs
# tests/test_gpu.py, benchmarks it with the minutes left and returns the run folder under $OUT
# (weights, logs, report, contact sheet, and state_slim.pt: the resumable state without its sample
# pool). To continue that run on a later machine, copy state_slim.pt to .gpu/resume/ here, carry
# ".gpu/resume" too and run `RESUME=.gpu/resume/state_slim.pt bash scripts/gpu_session.sh train CONFIG`.
# Without the device tool (a machine of your own with CUDA) the same commands work as they are.
# A dry run on the CPU, with the project's environment and no installs:
#   PY=.venv/bin/python SKIP_INSTALL=1 DEVICE=cpu MINUTES=0.3 WORKERS=1 ./scripts/gpu_session.sh train
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
mode=${1:-}
OUT=${OUT:-$root/output/gpu_session}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PY:-python3}

log() { echo "== $*"; }

prepare() {
    local py=${MMREALSR_PYTHON:-.venv/bin/python}
    local pip=(python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    rm -rf .gpu && mkdir -p .gpu/av .gpu/vs
    # Pinned to what the test suite runs with here (.venv), so both machines run the same code.
    v() { "$py" -c "import importlib.metadata as m; print(m.version('$1'))"; }
    "${pip[@]}" -d .gpu/av "av==$(v av)" "scenedetect-headless==$(v scenedetect-headless)" \
        "platformdirs==$(v platformdirs)" || exit 1
    "${pip[@]}" -d .gpu/vs "vapoursynth==$(v vapoursynth)" \
        "vapoursynth-bestsource==$(v vapoursynth-bestsource)" || exit 1
    # The training photos as high-quality JPEG at the training's max_side (1024): a fifth of the PNGs.
    [ -d data/photos/train ] || "$py" -m mmrealsr_training.photos --out data/photos || exit 1
    "$py" - <<'EOF' || exit 1
from pathlib import Path
import cv2
import torch
from mmrealsr_training.evaluate import read_crop
CROP = 256  # mmrealsr_training.evaluate's default centre crop: all of a held-out photo it reads
for split in ("train", "heldout"):
    out = Path(".gpu/photos") / split
    out.mkdir(parents=True, exist_ok=True)
    for p in sorted(Path("data/photos", split).iterdir()):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            continue
        s = 1024 / max(img.shape[:2])
        if s < 1:
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        # Held-out photos stay lossless, cut to the centre crop the evaluation reads (a fifth of the
        # size, so that a resumable state fits beside them in a call): it must see the pixels it sees here.
        if split == "heldout":
            full = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            h, w = full.shape[:2]
            top, left = (h - CROP) // 2, (w - CROP) // 2
            cv2.imwrite(str(out / p.name), full[top : top + CROP, left : left + CROP])
            assert torch.equal(read_crop(out / p.name, CROP), read_crop(p, CROP)), p
        else:
            cv2.imwrite(str(out / (p.stem + ".jpg")), img, [cv2.IMWRITE_JPEG_QUALITY, 97])
EOF
    du -sh .gpu/*
}

install() {
    [ -n "${SKIP_INSTALL:-}" ] && return
    # The GPU image has torch, numpy, scipy, opencv, safetensors, tqdm, pytest, onnx...; add the rest.
    python3 -m pip install -q --no-index --no-deps --no-compile .gpu/av/*.whl || exit 1
    if compgen -G ".gpu/vs/*.whl" >/dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile .gpu/vs/*.whl || exit 1
        python3 -m vapoursynth config >/dev/null 2>&1 || log "warning: vapoursynth config failed"
    fi
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
}

check() {
    install
    log "GPU tests"
    timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tail -4
    log "model: fps at 640x480, fp32 / fp16 / bf16"
    timeout 90 "$PY" benchmarks/bench_model.py --device cuda --size 640x480 --precisions fp32 fp16 bf16 2>&1 | tail -8
    log "pipeline: model-only vs a job end to end (1 and 2 workers), default model, then the released network"
    timeout 200 "$PY" benchmarks/bench_pipeline.py --device cuda --only speed --rounds 3 \
        --sizes 320x240 640x480 --frames 96 48 2>&1 | tail -9
    timeout 200 "$PY" benchmarks/bench_pipeline.py --device cuda --only speed --rounds 3 --model released \
        --sizes 320x240 640x480 --frames 48 24 2>&1 | tail -9
    if "$PY" -c "import vapoursynth as vs; vs.core.bs" 2>/dev/null; then
        log "vspipe vs the CLI"
        timeout 120 "$PY" benchmarks/bench_vapoursynth.py --device 0 --size 320x240 --frames 240 2>&1 | tail -7
    fi
}

train() {
    # train [CONFIG]: training/configs/CONFIG.toml (default compact_x4_gpu_context), then the held-out
    # evaluation, then (with the minutes left, $DEADLINE seconds after the start) the model benchmark.
    local name=${1:-compact_x4_gpu_context} t0=$SECONDS
    local run="$OUT/run" cfg="$OUT/$name.toml"
    install
    # The committed config, reading the photos from .gpu/ (DEVICE / MINUTES override for a dry run).
    sed -e 's|^dataroot = .*|dataroot = [".gpu/photos/train"]|' \
        -e "s|^device = .*|device = \"${DEVICE:-cuda}\"|" \
        ${MINUTES:+-e "s|^max_minutes = .*|max_minutes = $MINUTES|"} \
        ${WORKERS:+-e "s|^synthesis_workers = .*|synthesis_workers = $WORKERS|"} \
        "training/configs/$name.toml" >"$cfg" || exit 1
    local minutes
    minutes=$(grep ^max_minutes "$cfg" | cut -d' ' -f3)
    log "training for $minutes minutes ($cfg${RESUME:+, resuming $RESUME})"
    # Start-up (photo cache, workers) and the final save come on top of the budget.
    timeout "$(python3 -c "print(int(float('$minutes') * 60 + 120))")" \
        "$PY" -m mmrealsr_training train "$cfg" --run-dir "$run" --resume "${RESUME:-auto}" --no-progress 2>&1 |
        grep -E "net stage|step [0-9]*[05]00:|budget|finished|rror|arning" | cut -c1-400
    log "held-out evaluation"
    timeout 90 "$PY" -m mmrealsr_training.evaluate --model "$run/model_final.safetensors" --device "${DEVICE:-cuda}" \
        --photos .gpu/photos/heldout --out "$OUT/eval" -q 2>&1 | grep -E "mean|monotone|PASS|FAIL|rror"
    # At most 8 files of at most 16 MiB come back from the device: the final weights, the log, the
    # metrics, the config, the report, the contact sheet and the resumable state without its sample
    # pool (the whole state is too large; RESUME=.../state_slim.pt continues the run next time).
    "$PY" -m mmrealsr_training slim-state "$run/checkpoints/state_latest.pt" "$run/state_slim.pt" 2>&1 | grep -v INFO
    rm -rf "$run"/checkpoints "$cfg"
    if [ "${DEVICE:-cuda}" = cuda ]; then
        log "GPU tests (the networks on CUDA against the CPU)"
        timeout 90 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -4
    fi
    local left=$((${DEADLINE:-560} - (SECONDS - t0)))
    if [ "$left" -gt 40 ] && [ "${DEVICE:-cuda}" = cuda ]; then
        log "model: fps at 640x480, bundled and trained, fp32 / fp16 / bf16 ($left s left)"
        for m in default "$run/model_final.safetensors"; do
            timeout $((left / 2 - 5)) "$PY" benchmarks/bench_model.py --model "$m" --device cuda \
                --size 640x480 --precisions fp32 fp16 bf16 2>&1 | tail -5
        done
    fi
}

case "$mode" in
    prepare) prepare ;;
    check) check ;;
    train) train "${2:-}" ;;
    *)
        echo "usage: scripts/gpu_session.sh prepare|check|train" >&2
        exit 2
        ;;
esac
