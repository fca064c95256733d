// affine_act.wgsl: fused layer forward  Z = X·W + b,  Y = act(Z),  in one dispatch.
//
// Needs structs.wgsl and activations.wgsl prepended (the host does it); ACT/ACT_P select the
// activation. `Layer` (structs.wgsl) says which part r_begin..r_end of the k reduction this
// dispatch sums and whether it is the FIRST (bias, overwrite) or LAST (activation) part; with
// FLAG_GRAD_INPUT the same core computes dZ_prev = (dZ·Wᵀ) ⊙ act'(Z_prev) on a transposed W.
//
// X is [batch × fan_in], W is [fan_in × fan_out] and b is [fan_out], both inside the flat
// parameter buffer at w_offset / b_offset; Z and Y are [batch × fan_out], all row-major.
// The activation parameter is ACT_P, or the learned pReLU α params[alpha_offset] when
// alpha_learned is 1.
// Z (the pre-activation) is kept for the backward pass when store_z is 1: Swish, pReLU and
// GELU need it, their gradients cannot be recovered from Y alone.
//
// Register blocking: each invocation computes a 4×4 block of outputs: 4 consecutive rows and
// 4 columns strided by WG_X (lane lx of the workgroup owns columns lx, lx + 8, lx + 16, lx + 24
// of its 32-wide tile). Neighbouring invocations therefore read neighbouring elements of W and
// write neighbouring elements of Z and Y (coalesced on GPUs, one vector load on CPU adapters,
// which run neighbouring invocations as SIMD lanes), while the 4 X values per step of k are the
// same for a whole row of the workgroup (a broadcast). 16 multiply-adds per 8 loads; no
// workgroup memory and no barriers (barriers are expensive on CPU adapters).
// Edge blocks clamp their load indices and skip out-of-range stores, so any shape works.
// The row tiles may spill from grid y into grid z when there are more than one grid row.
//
// Bindings (group 0)
//   0 x:      array<f32>  read        [batch × fan_in]
//   1 params: array<f32>  read        flat parameters
//   2 z:      array<f32>  read_write  [batch × fan_out]
//   3 y:      array<f32>  read_write  [batch × fan_out]
//   4 dims:   Layer       uniform

const WG_X: u32 = 8u;
const WG_Y: u32 = 8u;
const TM: u32 = 4u;
const TN: u32 = 4u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> dims: Layer;

@compute @workgroup_size(WG_X, WG_Y)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = dims.batch;
    let k_len = dims.fan_in;
    let n = dims.fan_out;
    let tile_row = wid.y + wid.z * nwg.y;
    let row0 = (tile_row * WG_Y + lid.y) * TM;
    let col0 = wid.x * WG_X * TN + lid.x;
    if row0 >= m || col0 >= n {
        return;
    }
    // Clamped rows and columns: out-of-range lanes compute duplicates that are never stored.
    let rows = min(vec4<u32>(row0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(m - 1u)) * k_len;
    let cols = min(vec4<u32>(col0) + vec4<u32>(0u, 1u, 2u, 3u) * WG_X, vec4<u32>(n - 1u));
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var w_row = dims.w_offset + dims.r_begin * n;
    for (var k = dims.r_begin; k < dims.r_end; k++) {
        let xv = vec4<f32>(x[rows.x + k], x[rows.y + k], x[rows.z + k], x[rows.w + k]);
        let wv = vec4<f32>(params[w_row + cols.x], params[w_row + cols.y],
                           params[w_row + cols.z], params[w_row + cols.w]);
        acc0 += xv.x * wv;
        acc1 += xv.y * wv;
        acc2 += xv.z * wv;
        acc3 += xv.w * wv;
        w_row += n;
    }
    var bias = vec4<f32>(0.0);
    if (dims.flags & (FLAG_FIRST | FLAG_GRAD_INPUT)) == FLAG_FIRST {
        let b = dims.b_offset;
        bias = vec4<f32>(params[b + cols.x], params[b + cols.y], params[b + cols.z], params[b + cols.w]);
    }
    let p = act_param();
    store_row(row0, col0, acc0 + bias, p);
    store_row(row0 + 1u, col0, acc1 + bias, p);
    store_row(row0 + 2u, col0, acc2 + bias, p);
    store_row(row0 + 3u, col0, acc3 + bias, p);
}

// The activation parameter: the learned α in the parameters, or the override constant.
fn act_param() -> f32 {
    if dims.alpha_learned != 0u {
        return params[dims.alpha_offset];
    }
    return ACT_P;
}

// Stores columns col0, col0 + WG_X, col0 + 2·WG_X, col0 + 3·WG_X of one row: the partial sum
// (added to what earlier parts stored unless FIRST), and on the LAST part the epilogue.
fn store_row(row: u32, col0: u32, part: vec4<f32>, p: f32) {
    if row >= dims.batch {
        return;
    }
    let base = row * dims.fan_out;
    let n = dims.fan_out;
    let c = min(vec4<u32>(col0) + vec4<u32>(0u, 1u, 2u, 3u) * WG_X, vec4<u32>(n - 1u)) + base;
    var zv = part;
    if (dims.flags & FLAG_FIRST) == 0u {
        zv += vec4<f32>(z_or_y(c.x), z_or_y(c.y), z_or_y(c.z), z_or_y(c.w));
    }
    let last = (dims.flags & FLAG_LAST) != 0u;
    let grad = (dims.flags & FLAG_GRAD_INPUT) != 0u;
    var yv = zv;
    if last {
        if grad {
            yv = zv * act_grad4(vec4<f32>(z[c.x], z[c.y], z[c.z], z[c.w]), p);
        } else {
            yv = act4(zv, p);
        }
    }
    for (var j = 0u; j < TN; j++) {
        let col = col0 + j * WG_X;
        if col < n {
            if grad || !last {
                // grad_input keeps Z_prev in z and its running sums in y.
                if grad {
                    y[base + col] = yv[j];
                } else {
                    z[base + col] = zv[j];
                }
            } else {
                if dims.store_z != 0u || (dims.flags & FLAG_FIRST) == 0u {
                    z[base + col] = zv[j];
                }
                y[base + col] = yv[j];
            }
        }
    }
}

// Where earlier parts of the reduction left their running sum: y for grad_input (z holds
// Z_prev there), z for the forward.
fn z_or_y(i: u32) -> f32 {
    if (dims.flags & FLAG_GRAD_INPUT) != 0u {
        return y[i];
    }
    return z[i];
}
