#!/usr/bin/env bash
# Build, test and benchmark wgmlp on an NVIDIA GPU through Vulkan, within 8 minutes.
#
#   scripts/gpu-bench.sh [extra `wgmlp bench` arguments, e.g. --quick]
#
# Needs: Linux, an NVIDIA driver with its Vulkan ICD, a Vulkan loader (libvulkan.so.1), a
# Rust toolchain, and the crate's dependencies already in the local cargo cache (or vendored):
# nothing is installed or downloaded (cargo runs with --frozen).
#
# Environment:
#   OUT                 where bench.json (and vendor_blas.json) go; default ./bench-out
#   WGPU_ADAPTER_NAME   adapter name substring; default NVIDIA
#   BUDGET_S            total seconds for everything; default 480
#
# If PyTorch with CUDA is already installed, it also times the vendor yardsticks in the same
# run: cuBLAS fp32 (TF32 off) at 4096³ for the "≥ 50% of vendor BLAS" comparison, the bench's
# layer shapes, and a 784-256-10 training step at batch 256 (SGD) on the GPU and on one CPU
# thread; otherwise that step is skipped (and says so).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-./bench-out}
BUDGET_S=${BUDGET_S:-480}
export WGPU_BACKEND=vulkan
export WGPU_ADAPTER_NAME=${WGPU_ADAPTER_NAME:-NVIDIA}
mkdir -p "$OUT"
deadline=$((SECONDS + BUDGET_S))

# Runs "$@" with whatever is left of the budget; names the step that ran out of time.
step() {
    local name=$1
    shift
    local left=$((deadline - SECONDS))
    if ((left <= 0)); then
        echo "gpu-bench: no time left for: $name (budget ${BUDGET_S} s)" >&2
        exit 124
    fi
    echo
    echo "=== $name (at most ${left} s left) ==="
    local rc=0
    timeout --kill-after=10 "$left" "$@" || rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "gpu-bench: $name ran out of time (budget ${BUDGET_S} s)" >&2
    fi
    return "$rc"
}

echo "=== adapter ==="
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
    echo "warning: nvidia-smi not found; is the NVIDIA driver installed?" >&2
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then
    echo "error: no Vulkan loader (libvulkan.so.1) on this machine; install your distribution's" >&2
    echo "       libvulkan1 package (or put the library on LD_LIBRARY_PATH), then run this again" >&2
    exit 2
fi
echo "WGPU_BACKEND=$WGPU_BACKEND WGPU_ADAPTER_NAME=$WGPU_ADAPTER_NAME OUT=$OUT"

step "build (release, offline)" cargo build --release --frozen --bins --tests
bin=target/release/wgmlp
# The adapter wgmlp chooses under these variables; it fails here if there is no match.
step "wgmlp info" "$bin" info
step "cargo test --release" cargo test --release --frozen
step "wgmlp bench" "$bin" bench --json "$OUT/bench.json" "$@"

if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    step "vendor BLAS fp32 4096³ (PyTorch/cuBLAS, TF32 off)" python3 - "$OUT/vendor_blas.json" <<'PY'
import json, statistics, sys
import torch

torch.backends.cuda.matmul.allow_tf32 = False
n = 4096
a = torch.rand(n, n, device="cuda") - 0.5
b = torch.rand(n, n, device="cuda") - 0.5
for _ in range(3):
    torch.mm(a, b)
torch.cuda.synchronize()
times = []
for _ in range(10):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.mm(a, b)
    end.record()
    torch.cuda.synchronize()
    times.append(start.elapsed_time(end) / 1e3)
rates = [2 * n**3 / t / 1e9 for t in times]
result = {
    "library": f"cuBLAS via torch {torch.__version__}",
    "device": torch.cuda.get_device_name(),
    "n": n,
    "gflops": statistics.median(rates),
    "gflops_min": min(rates),
    "gflops_max": max(rates),
}
json.dump(result, open(sys.argv[1], "w"), indent=2)
print(json.dumps(result, indent=2))
PY
    step "vendor training step and layer shapes (PyTorch, CUDA and 1 CPU thread)" \
        python3 - "$OUT/vendor_train.json" <<'PY'
import json, statistics, sys, time
import torch

torch.backends.cuda.matmul.allow_tf32 = False


def median_rate(fn, work, reps, sync):
    for _ in range(3):
        fn()
    sync()
    rates = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        sync()
        rates.append(work / (time.perf_counter() - t))
    return statistics.median(rates), min(rates), max(rates)


def training(device, steps=50):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
    ).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.rand(256 * steps, 784, device=device) - 0.5
    y = torch.randint(0, 10, (256 * steps,), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        for i in range(steps):
            xb, yb = x[i * 256:(i + 1) * 256], y[i * 256:(i + 1) * 256]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            opt.step()

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return median_rate(epoch, 256 * steps, 5, sync)


result = {"torch": torch.__version__, "device": torch.cuda.get_device_name(), "layers": []}
for m, k, n in [(256, 784, 256), (1024, 1024, 1024), (4096, 4096, 4096)]:
    a = torch.rand(m, k, device="cuda") - 0.5
    b = torch.rand(k, n, device="cuda") - 0.5
    med, lo, hi = median_rate(lambda: torch.mm(a, b), 2 * m * k * n / 1e9, 10,
                              torch.cuda.synchronize)
    result["layers"].append({"m": m, "k": k, "n": n, "gflops": med, "gflops_min": lo,
                             "gflops_max": hi})
med, lo, hi = training("cuda")
result["train_cuda"] = {"model": "784-256-10", "batch_size": 256,
                        "samples_per_second": med, "min": lo, "max": hi}
torch.set_num_threads(1)
med, lo, hi = training("cpu", steps=20)
result["train_cpu_1_thread"] = {"model": "784-256-10", "batch_size": 256,
                                "samples_per_second": med, "min": lo, "max": hi}
json.dump(result, open(sys.argv[1], "w"), indent=2)
print(json.dumps(result, indent=2))
PY
    python3 - "$OUT/bench.json" "$OUT/vendor_blas.json" "$OUT/vendor_train.json" <<'PY'
import json, sys
bench, blas, train = (json.load(open(p)) for p in sys.argv[1:4])
for row in bench.get("train", []):
    if row.get("model") == "784-256-10":
        ours = row["gpu_samples_per_second"]
        cuda = train["train_cuda"]["samples_per_second"]
        print(f"784-256-10 training: wgmlp {ours:.0f} samples/s, PyTorch CUDA {cuda:.0f} "
              f"({ours / cuda:.2f}x), PyTorch 1 CPU thread "
              f"{train['train_cpu_1_thread']['samples_per_second']:.0f}")
for layer in bench.get("layers", []):
    if (layer["m"], layer["k"], layer["n"]) == (4096, 4096, 4096):
        best = max(layer["fused_gflops"], layer["unfused_gflops"], layer["backward_gflops"])
        share = best / blas["gflops"]
        verdict = "met" if share >= 0.5 else "missed"
        print(f"4096³: best wgmlp {best:.0f} GFLOP/s = {share:.1%} of vendor BLAS "
              f"{blas['gflops']:.0f} GFLOP/s (target ≥ 50%: {verdict})")
PY
else
    echo
    echo "(PyTorch with CUDA not installed: vendor BLAS comparison skipped)"
fi

echo
echo "done in ${SECONDS} s; results in $OUT/"
