#!/bin/bash
# The CUDA check: training throughput by batch size, the default pipeline with CUDA, the test suite.
#
#     OUT=DIR bash benchmarks/gpu_check.sh        # on a machine with a CUDA GPU, from the repository root
#
# Needs a Python with torch (CUDA build), snakemake, openTSNE and pytest-xdist; etasvae comes from workflow/.
# Writes bench.txt, pipeline.txt, summary.csv and pytest.txt to $OUT (default: a temporary folder).
export PYTHONUNBUFFERED=1 PYTHONHASHSEED=0 PYTHONPATH="$PWD/workflow${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-$(mktemp -d)}
echo "results in $OUT"
{
    nvidia-smi -L
    python3 -c "import torch; print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name())"
    for b in 64 256 1024 4096; do
        timeout 60 python3 benchmarks/bench_train.py --device cuda --batch-size $b --epochs 3 2>/dev/null
    done
    timeout 60 python3 benchmarks/bench_train.py --device cpu --threads "$(nproc)" --batch-size 256 --epochs 2 2>/dev/null
} 2>&1 | tee "$OUT/bench.txt"
run=$(mktemp -d)
timeout 300 python3 benchmarks/bench_pipeline.py --cores "$(nproc)" --keep "$run" 2>&1 | tee "$OUT/pipeline.txt"
cp "$run/results/reports/summary.csv" "$OUT/" 2>/dev/null
grep -h "training sequence" "$run"/results/logs/train/pooled/*.log | tee -a "$OUT/pipeline.txt"
OMP_NUM_THREADS=1 timeout 400 python3 -m pytest -q -n "$(( $(nproc) - 2 ))" -m "not slurm" -p no:cacheprovider -rfE \
    --tb=short 2>&1 | tee "$OUT/pytest.txt" | tail -40
