#!/usr/bin/env bash
# Every CUDA check in one command, about 8 minutes on one large GPU:
#   scripts/gpu_check.sh [REPORT_DIR] [--budget SECONDS] [--batch 8] [--skip-tests] [--cpu-dry-run]
# Runs the CUDA-marked tests, the selective-scan equality and timing (reference, Triton, mamba-ssm when it imports),
# every model's 256² forward in fp32 and bf16 with peak memory, one training step of SEM-Net, M×T and HINT at
# batch 8, and the pipeline on a 12 MP photo; writes REPORT_DIR/gpu_check.md and .json (default ./gpu_check).
# Needs nothing downloaded (random weights; this measures cost and equality, never a user's image).
# Exits at once, with status 2, where no CUDA GPU is visible. --cpu-dry-run runs every section on the CPU at tiny
# sizes through the same code and writes the same report (a default test does this, so the script cannot rot).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
OUT=gpu_check
ARGS=()
DRY=0
for arg in "$@"; do
  case "$arg" in
    --cpu-dry-run) DRY=1; ARGS+=("$arg") ;;
    -*) ARGS+=("$arg") ;;
    *) if [ ${#ARGS[@]} -gt 0 ] && [[ "${ARGS[-1]}" == --budget || "${ARGS[-1]}" == --batch ]]; then
         ARGS+=("$arg")
       else
         OUT=$arg
       fi ;;
  esac
done
if [ "$DRY" = 1 ]; then
  exec timeout 570 "$PY" scripts/gpu_check.py --out "$OUT" "${ARGS[@]}"
fi
if ! "$PY" -c '
import sys
import torch
if not torch.cuda.is_available():
    cuda = torch.version.cuda or "none"
    sys.exit(f"gpu_check: no CUDA GPU is visible to torch {torch.__version__} (CUDA build: {cuda}); nothing to "
             "check. Run it on a machine with an NVIDIA GPU and a CUDA build of torch.")
'; then
  exit 2
fi
# Sections stop starting after --budget (default 450 s); the hard limit leaves the report of the finished ones.
exec timeout 570 "$PY" scripts/gpu_check.py --out "$OUT" "${ARGS[@]}"
