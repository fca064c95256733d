// loss.wgsl: the loss of a batch and its gradient w.r.t. the outputs, fused in one dispatch.
//
//   softmax cross-entropy:  loss_r = logsumexp(l_r) − l_r[y_r],  dL/dl = (softmax(l) − onehot(y)) / batch
//   MSE (one-hot target):   loss_r = Σ_c (l_rc − t_rc)² / classes, dL/dl = 2 (l − t) / (batch · classes)
//   regression (float targets t, d = l − t, mean over the row's outputs, as PyTorch):
//     MSE    ℓ(d) = d²                               ℓ'(d) = 2d
//     L1     ℓ(d) = |d|                              ℓ'(d) = sign(d) (0 at 0)
//     Huber  ℓ(d) = d²/2 if |d| ≤ 1 else |d| − 1/2   ℓ'(d) = clamp(d, −1, 1)
//     dL/dl = ℓ'(d) / (batch · outputs). The running metrics add Σ (s_c d)² and Σ |s_c d|
//     with s_c = target_scale[c] (the std of a standardised target, else 1), so MSE and MAE
//     come back in the targets' own units; `correct` stays 0.
//
// The log-sum-exp subtracts the row maximum first, so logits of ±1e4 neither overflow nor
// lose the answer. One workgroup handles rows row_begin..row_end of the batch (strided over 256
// invocations; the host splits large batches into several dispatches, see src/gpu/matmul.rs)
// and reduces the loss sum and the correct count in workgroup memory, so the running
// metrics in `state` need no atomics; they are read back once per epoch.
// When training, a non-finite batch loss sets state.diverged (once), which stops every later
// optimizer update: the parameters from before the bad step are kept. (The step counter itself
// is advanced by optim.wgsl's `tick` after the backward, whose dropout masks are keyed by it.)
// Logits and dlogits rows are dims.stride floats apart (the output layer is padded to a
// multiple of 4 columns on the GPU); targets rows are classes floats apart.
//
// Needs structs.wgsl prepended (the host does it).
//
// Bindings (group 0)
//   0 logits:  array<f32>  read        [batch × stride] (classes used, the rest padding)
//   1 labels:  array<u32>  read        [batch]
//   2 dlogits: array<f32>  read_write  [batch × stride]  (classes written when dims.training is 1)
//   3 state:   TrainState  read_write  running metrics and the step counter
//   4 dims:    LossDims    uniform
//   5 targets: array<f32>  read        [batch × classes] regression targets (a dummy for classification)
//   6 target_scale: array<f32> read    [classes] per-output scale of the error metrics

const WG: u32 = 256u;
const LOSS_CE: u32 = 0u;
const LOSS_MSE_ONEHOT: u32 = 1u;
const LOSS_MSE: u32 = 2u;
const LOSS_L1: u32 = 3u;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: TrainState;
@group(0) @binding(4) var<uniform> dims: LossDims;
@group(0) @binding(5) var<storage, read> targets: array<f32>;
@group(0) @binding(6) var<storage, read> target_scale: array<f32>;

var<workgroup> red_loss: array<f32, WG>;
var<workgroup> red_correct: array<u32, WG>;
var<workgroup> red_sq: array<f32, WG>;
var<workgroup> red_abs: array<f32, WG>;

fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(WG)
fn loss(@builtin(local_invocation_index) t: u32) {
    let c_len = dims.classes;
    let inv_b = 1.0 / f32(dims.batch);
    var loss_acc = 0.0;
    var correct = 0u;
    var sq_acc = 0.0;
    var abs_acc = 0.0;
    if dims.loss_kind >= LOSS_MSE {
        let scale = inv_b / f32(c_len);
        for (var r = dims.row_begin + t; r < dims.row_end; r += WG) {
            let base = r * dims.stride;
            let tbase = r * c_len;
            var row = 0.0;
            for (var c = 0u; c < c_len; c++) {
                let d = logits[base + c] - targets[tbase + c];
                let ad = abs(d);
                var l = d * d;
                var g = 2.0 * d;
                if dims.loss_kind == LOSS_L1 {
                    l = ad;
                    g = sign(d);
                } else if dims.loss_kind != LOSS_MSE {
                    l = select(ad - 0.5, 0.5 * d * d, ad <= 1.0);
                    g = clamp(d, -1.0, 1.0);
                }
                row += l;
                let e = d * target_scale[c];
                sq_acc += e * e;
                abs_acc += abs(e);
                if dims.training != 0u {
                    dlogits[base + c] = g * scale;
                }
            }
            loss_acc += row / f32(c_len);
        }
    } else {
        for (var r = dims.row_begin + t; r < dims.row_end; r += WG) {
            let base = r * dims.stride;
            let label = labels[r];
            var mx = logits[base];
            var arg = 0u;
            for (var c = 1u; c < c_len; c++) {
                let v = logits[base + c];
                if v > mx {
                    mx = v;
                    arg = c;
                }
            }
            correct += select(0u, 1u, arg == label);
            if dims.loss_kind == LOSS_CE {
                var s = 0.0;
                for (var c = 0u; c < c_len; c++) {
                    s += exp(logits[base + c] - mx);
                }
                loss_acc += mx + log(s) - logits[base + label];
                if dims.training != 0u {
                    let inv_s = 1.0 / s;
                    for (var c = 0u; c < c_len; c++) {
                        let p = exp(logits[base + c] - mx) * inv_s;
                        dlogits[base + c] = (p - select(0.0, 1.0, c == label)) * inv_b;
                    }
                }
            } else {
                let scale = 2.0 * inv_b / f32(c_len);
                var row = 0.0;
                for (var c = 0u; c < c_len; c++) {
                    let diff = logits[base + c] - select(0.0, 1.0, c == label);
                    row += diff * diff;
                    if dims.training != 0u {
                        dlogits[base + c] = scale * diff;
                    }
                }
                loss_acc += row / f32(c_len);
            }
        }
    }
    red_loss[t] = loss_acc;
    red_correct[t] = correct;
    red_sq[t] = sq_acc;
    red_abs[t] = abs_acc;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if t < stride {
            red_loss[t] += red_loss[t + stride];
            red_correct[t] += red_correct[t + stride];
            red_sq[t] += red_sq[t + stride];
            red_abs[t] += red_abs[t + stride];
        }
        workgroupBarrier();
    }
    if t == 0u {
        let batch_loss = red_loss[0];
        state.loss_sum += batch_loss;
        state.correct += red_correct[0];
        state.sq_err += red_sq[0];
        state.abs_err += red_abs[0];
        state.count += dims.row_end - dims.row_begin;
        if dims.training != 0u && state.diverged == 0u && !is_finite(batch_loss) {
            state.diverged = 1u;
            state.bad_step = state.step + 1u;
            state.bad_loss = batch_loss * inv_b;
        }
    }
}
