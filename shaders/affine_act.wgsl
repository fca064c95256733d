// affine_act.wgsl: fused layer forward  Z = X·W + b,  Y = act(Z),  in one dispatch.
//
// Needs activations.wgsl prepended (the host does it); ACT/ACT_P select the activation.
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

struct Layer {
    batch: u32,
    fan_in: u32,
    fan_out: u32,
    w_offset: u32,
    b_offset: u32,
    store_z: u32,
    alpha_offset: u32,   // index of the learned pReLU α in params, when alpha_learned is 1
    alpha_learned: u32,  // 1: the activation parameter is params[alpha_offset], 0: ACT_P
}

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
    var w_row = dims.w_offset;
    for (var k = 0u; k < k_len; k++) {
        let xv = vec4<f32>(x[rows.x + k], x[rows.y + k], x[rows.z + k], x[rows.w + k]);
        let wv = vec4<f32>(params[w_row + cols.x], params[w_row + cols.y],
                           params[w_row + cols.z], params[w_row + cols.w]);
        acc0 += xv.x * wv;
        acc1 += xv.y * wv;
        acc2 += xv.z * wv;
        acc3 += xv.w * wv;
        w_row += n;
    }
    let b = dims.b_offset;
    let bias = vec4<f32>(params[b + cols.x], params[b + cols.y], params[b + cols.z], params[b + cols.w]);
    store_row(row0, col0, acc0 + bias);
    store_row(row0 + 1u, col0, acc1 + bias);
    store_row(row0 + 2u, col0, acc2 + bias);
    store_row(row0 + 3u, col0, acc3 + bias);
}

// The activation parameter: the learned α in the parameters, or the override constant.
fn act_param() -> f32 {
    if dims.alpha_learned != 0u {
        return params[dims.alpha_offset];
    }
    return ACT_P;
}

// Stores columns col0, col0 + WG_X, col0 + 2·WG_X, col0 + 3·WG_X of one row.
fn store_row(row: u32, col0: u32, zv: vec4<f32>) {
    if row >= dims.batch {
        return;
    }
    let yv = act4(zv, act_param());
    let base = row * dims.fan_out;
    for (var j = 0u; j < TN; j++) {
        let col = col0 + j * WG_X;
        if col < dims.fan_out {
            if dims.store_z != 0u {
                z[base + col] = zv[j];
            }
            y[base + col] = yv[j];
        }
    }
}
