#!/usr/bin/env bash
# The main job. Without arguments: set up (idempotent), then restore the bundled sample clip
# (examples/sample.mp4, made by examples/make_sample_clip.py) with the bundled default model on the
# CPU (or GPU if present) and say where the result is.
# With arguments: set up, then run `mmrealsr-video ARGS...` (e.g. `scripts/run.sh info`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
./scripts/setup.sh
exe=.venv/bin/mmrealsr-video
if [ $# -gt 0 ]; then
    exec "$exe" "$@"
fi
sample=examples/sample.mp4
out=output/sample_x4.mp4
if ! .venv/bin/python -c 'import sys; from mmrealsr_video.models.loader import bundled_model_path; sys.exit(bundled_model_path("default") is None)'; then
    echo "The bundled default model is not in this checkout yet; here is what is installed:"
    exec "$exe" info
fi
mkdir -p output
"$exe" restore "$sample" "$out" --force --save-track output/sample_x4.track.json
echo "result: $root/$out (coefficients used: $root/output/sample_x4.track.json)"
