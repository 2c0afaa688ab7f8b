#!/usr/bin/env bash
# The GPU session's device check, in one command of about 7 minutes (issue 17's measurements).
#
#   on the device machine, from the repository root, with the wheels of POT and lmdb in .whl/:
#     bash tools/gpu_check.sh                       # writes its files to $OUT
#   rehearsal on a CPU machine (tiny sizes; CUDA tests skip, no graphs or bf16):
#     SMOKE=1 OUT=/tmp/gpuout bash tools/gpu_check.sh
#
# Parts, each with its own time guard, each writing to $OUT as it goes (a kill keeps what was
# written): (0) the wheels, env.txt; (1) pytest labkit/tests/test_fast.py, CUDA tests included
# (test_fast.log); (2) benchmarks/gpu_lsun.py on a generated LSUN-format LMDB (gpu_lsun.json,
# profile.txt); (3) if time is left, a short run of the fast path at the authors' settings on the
# same generated data (short_run.json, short_run.png). Everything printed goes to check.log too.
# Settings: OUT (required), SMOKE (1: CPU rehearsal), DEADLINE (seconds from the start by which
# part 3 ends; default 390, 150 with SMOKE=1), PY (default python3), SITE (where the wheels go; /tmp/site), WORK
# (LMDB and cache; /tmp/gpu_lsun).

set -u
T0=$(date +%s)
: "${OUT:?set OUT to the folder for the results}"
SMOKE=${SMOKE:-0}
DEADLINE=${DEADLINE:-$([ "$SMOKE" = 1 ] && echo 150 || echo 390)}
PY=${PY:-python3}
SITE=${SITE:-/tmp/site}
WORK=${WORK:-/tmp/gpu_lsun}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/check.log") 2>&1
elapsed() { echo $(( $(date +%s) - T0 )); }
left() { echo $(( DEADLINE - $(elapsed) )); }
part() { echo; echo "=== [$(elapsed) s] $*"; }

# ---------------------------------------------------------------- (0) wheels and environment
part "wheels"
if compgen -G ".whl/*.whl" >/dev/null; then
    ls -l .whl/
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .whl/*.whl && export PYTHONPATH="$SITE:$PWD" \
        || { echo "the wheels did not install"; export PYTHONPATH="$PWD"; }
else
    echo "no .whl/ here: POT and lmdb must be installed already"
    export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1
{
    echo "date: $(date -u +%FT%TZ)  host: $(uname -srm)  cpus: $(nproc)"
    nvidia-smi -L 2>&1 || echo "no nvidia-smi"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,power.limit \
        --format=csv 2>&1 || true
    "$PY" - <<'EOF'
import importlib, sys
print("python", sys.version.split()[0], sys.executable)
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available",
      torch.cuda.is_available(), "cudnn",
      torch.backends.cudnn.version() if torch.cuda.is_available() else None)
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(), "capability",
          torch.cuda.get_device_capability(), "free/total GiB",
          [round(x / 2**30, 1) for x in torch.cuda.mem_get_info()])
for name in ("numpy", "scipy", "ot", "lmdb", "PIL", "matplotlib", "sklearn", "tqdm", "pytest"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"), module.__file__)
    except Exception as error:  # noqa: BLE001 - report and go on
        print(name, "MISSING:", error)
EOF
} 2>&1 | tee "$OUT/env.txt"

# ---------------------------------------------------------------- (1) the fast path's tests
part "pytest labkit/tests/test_fast.py (timeout 150 s)"
set -o pipefail
timeout -k 5 150 "$PY" -m pytest -q -p no:cacheprovider labkit/tests/test_fast.py 2>&1 \
    | tee "$OUT/test_fast.log"
echo "pytest exit status: $? (124: timed out)" | tee -a "$OUT/test_fast.log"

# ---------------------------------------------------------------- (2) the LSUN benchmark
rm -rf "$WORK"
LEFT=$(left)
if [ "$SMOKE" = 1 ]; then
    BENCH=(--smoke --lmdb-workers 2 --lmdb-seconds 30 --time-limit 5 --e2e-time-limit 5)
    LIMIT=120
elif [ "$LEFT" -ge 260 ]; then  # the planned ~3.5 minutes
    BENCH=(--images 40000 --lmdb-workers 16 --lmdb-seconds 45 --time-limit 10
           --e2e-time-limit 15)
    LIMIT=$(( LEFT - 60 < 270 ? LEFT - 60 : 270 ))
else  # the tests took long: a smaller LMDB, shorter loops
    BENCH=(--images 20000 --lmdb-workers 16 --lmdb-seconds 25 --time-limit 5
           --e2e-time-limit 8 --no-eager)
    LIMIT=$(( LEFT - 20 > 60 ? LEFT - 20 : 60 ))
fi
part "benchmarks/gpu_lsun.py ${BENCH[*]} (timeout $LIMIT s)"
timeout -k 10 "$LIMIT" "$PY" benchmarks/gpu_lsun.py --out "$OUT/gpu_lsun.json" --dir "$WORK" \
    --lmdb-size 256 --prepare-workers 16 --loader-workers 2 --iters 300 --e2e-iters 20 \
    --profile "$OUT/profile.txt" "${BENCH[@]}"
echo "gpu_lsun exit status: $? (124: timed out; gpu_lsun.json then holds what was measured)"

# ---------------------------------------------------------------- (3) a short training run
LEFT=$(left)
CACHE=$(ls -d "$WORK"/cache* 2>/dev/null | head -1)
RATE=$("$PY" -c "import json, sys; r = json.load(open(sys.argv[1]))['results']
print(r.get('c_fast_fp32', {}).get('it_per_s', 20.0))" "$OUT/gpu_lsun.json" 2>/dev/null || echo 20)
if [ -z "$CACHE" ] || [ ! -f "$CACHE/images.npy" ]; then
    part "short run skipped: no cache was made"
elif [ "$LEFT" -lt 45 ]; then
    part "short run skipped: $LEFT s left"
else
    part "tools/gpu_short_run.py: up to 2000 iterations in $(( LEFT - 5 )) s at ~$RATE it/s"
    SHORT=()
    [ "$SMOKE" = 1 ] && SHORT=(--smoke)
    timeout -k 5 "$LEFT" "$PY" tools/gpu_short_run.py --cache "$CACHE" \
        --json "$OUT/short_run.json" --png "$OUT/short_run.png" --seconds $(( LEFT - 5 )) \
        --rate "$RATE" --max-iters 2000 "${SHORT[@]}"
    echo "short run exit status: $?"
fi

rm -f "$OUT"/*.tmp
part "done; files in \$OUT:"
ls -l "$OUT"
