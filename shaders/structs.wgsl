// structs.wgsl: SNIPPET, prepended by the host to every kernel (before activations.wgsl).
//
// The uniform and storage structs the kernels share, defined once. Each has a Rust mirror in
// src/gpu/uniforms.rs; a test compares every member's offset (naga's layouter) with the
// mirror, so the two cannot drift apart.

// One dispatch of a layer kernel (the matmul cores, grad_input, transpose).
//
// `r_begin..r_end` is the part of the reduction this dispatch sums: k for the forward, batch
// rows for dW/db, columns of dZ for grad_input. The host splits a long reduction into several
// dispatches (llvmpipe stops every loop of an invocation once 65,535 iterations have run in
// total, silently: see src/gpu/matmul.rs), flagged FIRST and LAST:
//   FIRST: the output is overwritten (the forward adds the bias); else it is accumulated into.
//   LAST:  the epilogue runs (activation, or act' for grad_input); else the raw sum is stored.
struct Layer {
    batch: u32,
    fan_in: u32,
    fan_out: u32,
    w_offset: u32,
    b_offset: u32,
    store_z: u32,        // 1: the forward keeps Z (training), 0: only Y (inference)
    alpha_offset: u32,   // index of the learned pReLU α in params, when alpha_learned is 1
    alpha_learned: u32,  // 1: the activation parameter is params[alpha_offset], 0: ACT_P
    r_begin: u32,
    r_end: u32,
    flags: u32,          // FLAG_FIRST | FLAG_LAST | FLAG_GRAD_INPUT
    _pad0: u32,
}

const FLAG_FIRST: u32 = 1u;
const FLAG_LAST: u32 = 2u;
// The forward cores compute dZ_prev = (dZ·Wᵀ) ⊙ act'(Z_prev) instead of act(X·W + b): x is
// dZ, params holds Wᵀ, z holds Z_prev (read), y receives dZ_prev; no bias.
const FLAG_GRAD_INPUT: u32 = 4u;

// The loss of rows row_begin..row_end of a batch (one dispatch per chunk of rows).
struct LossDims {
    batch: u32,
    classes: u32,
    loss_kind: u32,
    training: u32,
    row_begin: u32,
    row_end: u32,
    _pad0: u32,
    stride: u32,         // floats per row of logits and dlogits (classes padded to a multiple of 4)
}

// Optimizer hyper-parameters.
struct OptParams {
    n: u32,
    kind: u32,
    lr: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    clip_norm: f32,      // gradient clipping by global norm; 0: off
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Running training state, shared by loss.wgsl and optim.wgsl (read back once per epoch).
struct TrainState {
    step: u32,
    diverged: u32,
    bad_step: u32,
    bad_loss: f32,
    loss_sum: f32,
    correct: u32,
    count: u32,
    _pad0: u32,
    sq_err: f32,         // regression: Σ squared error, in the targets' units
    abs_err: f32,        // regression: Σ absolute error, in the targets' units
    grad_scale: f32,     // gradient clipping: this step's factor (clip.wgsl), read by optim.wgsl
    _pad2: u32,
}

// A batch gather from one row chunk of a resident dataset.
struct GatherDims {
    batch: u32,
    n_features: u32,
    row_start: u32,
    row_end: u32,
}

// The reduction of learned-α partial sums.
struct AlphaDims {
    count: u32,
    alpha_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

// Streaming kernels over vec4 buffers (elementwise activations, copy).
struct StreamDims {
    n_vec4: u32,
    // vec4s each workgroup handles (lane-interleaved layout) or 0 (one per invocation).
    per_group: u32,
    _pad0: u32,
    _pad1: u32,
}

// One matrix transpose: dst[dst_offset + c·rows + r] = src[src_offset + r·cols + c].
struct TransposeDims {
    rows: u32,
    cols: u32,
    src_offset: u32,
    dst_offset: u32,
}

// Gradient clipping: the sum of squares of n gradients in blocks of per_group.
struct ClipDims {
    n: u32,
    per_group: u32,
    groups: u32,
    _pad0: u32,
}

// Inverted dropout on n values of a hidden layer (dropout.wgsl).
struct DropoutDims {
    n: u32,
    layer: u32,
    seed: u32,
    p: f32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// The fused MLP kernel's dispatch (fused_mlp.wgsl, generated per model shape).
struct FusedDims {
    batch: u32,
    chunk_rows: u32,     // rows per chunk
    chunks: u32,         // ceil(batch / chunk_rows)
    slots: u32,          // row groups dispatched, one per chunk
    stride: u32,         // floats per slot in `partials`
    flags: u32,          // FLAG_GRADS | FLAG_LOSS | FLAG_OUTPUTS | FLAG_TARGETS (fused_mlp.wgsl)
    loss_kind: u32,      // 0 softmax cross-entropy, 1 MSE
    inv_batch: f32,      // 1 / batch: the loss is a mean over the batch
    metrics_at: u32,     // offset of a slot's metrics (loss sum, correct, rows) in its row;
                         // a scratch float per lane for masked writes follows them
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// One affine layer of the fused kernel; `act` and `act_p` as Activation::wgsl_id / param.
struct FusedLayer {
    w_offset: u32,
    b_offset: u32,
    alpha_offset: u32,
    act: u32,
    act_p: f32,
    fan_in: u32,
    fan_out: u32,
    learned: u32,        // 1: the activation parameter is params[alpha_offset] (learned pReLU α)
}

// Every layer of a fused model (the rest zero).
struct FusedLayers {
    l: array<FusedLayer, 16>,
}

// The sum of the fused kernel's per-slot gradients and metrics (fused_reduce.wgsl).
struct ReduceDims {
    n4: u32,             // vec4s of gradients
    slots: u32,
    stride4: u32,        // vec4s per slot
    metrics4: u32,       // vec4 index of the metrics in a slot
    batch: u32,
    flags: u32,          // RED_GRADS | RED_METRICS | RED_TRAIN (fused_reduce.wgsl)
    _pad0: u32,
    _pad1: u32,
}

// The copy of the flat parameters into the fused kernel's texture (fused_pack.wgsl).
struct PackDims {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
