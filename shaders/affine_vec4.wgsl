// affine_vec4.wgsl: the layer kernels of affine_act.wgsl and affine_backward.wgsl, with vec4
// loads and stores along the output columns, for layers whose fan_out is a multiple of 4 (and
// whose parameters start at multiples of 4 floats). The host picks this variant when the
// shapes allow it, and the scalar kernels otherwise (see src/gpu/kernels.rs, `MatmulVariant`).
//
// Needs structs.wgsl and activations.wgsl prepended (the host does it). The activation
// parameter is ACT_P, or the learned pReLU α params[alpha_offset] when alpha_learned is 1.
// Each dispatch sums the part r_begin..r_end of its reduction (k for the forward, batch rows for
// dW) and honours FLAG_FIRST / FLAG_LAST / FLAG_GRAD_INPUT as affine_act.wgsl describes.
//
// Register blocking: an invocation owns 8 rows × 8 columns, as two vec4 columns 8 vec4s apart
// (lane lx of the workgroup owns vec4 columns lx and lx + 8 of its 16-vec4-wide tile), so a
// workgroup of 8 × 8 invocations covers 64 × 64 outputs. Per step of the reduction it loads
// 8 scalars of one operand and 2 vec4s of the other for 64 multiply-adds; no workgroup memory.
//
// Bindings (group 0), entry `forward`:  Z = X·W + b, Y = act(Z)
//   0 x:      array<f32>        read        [batch × fan_in]
//   1 params: array<vec4<f32>>  read        flat parameters
//   2 z:      array<vec4<f32>>  read_write  [batch × fan_out]
//   3 y:      array<vec4<f32>>  read_write  [batch × fan_out]
//   4 dims:   Layer             uniform
// Bindings (group 0), entry `grad_weights`:  dW = Xᵀ·dZ, db = Σ_rows dZ
//   0 x:      array<f32>        read        [batch × fan_in]
//   5 dz:     array<vec4<f32>>  read        [batch × fan_out]
//   6 grads:  array<vec4<f32>>  read_write  flat gradients
//   4 dims:   Layer             uniform

const WG_X: u32 = 8u;
const WG_Y: u32 = 8u;
const ROWS: u32 = 8u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> z: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> dims: Layer;
@group(0) @binding(5) var<storage, read> dz: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> grads: array<vec4<f32>>;

@compute @workgroup_size(WG_X, WG_Y)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = dims.batch;
    let k_len = dims.fan_in;
    let n4 = dims.fan_out / 4u;
    let tile_row = wid.y + wid.z * nwg.y;
    let row0 = (tile_row * WG_Y + lid.y) * ROWS;
    let ca = wid.x * 2u * WG_X + lid.x;
    let cb = ca + WG_X;
    if row0 >= m || ca >= n4 {
        return;
    }
    let cb_load = min(cb, n4 - 1u);
    // Row starts, clamped: out-of-range rows compute duplicates that are never stored.
    // (Written out, not as arrays: private arrays indexed in a loop live in memory on some
    // drivers, and this loop is the whole kernel.)
    let r0 = min(row0 + 0u, m - 1u) * k_len;
    let r1 = min(row0 + 1u, m - 1u) * k_len;
    let r2 = min(row0 + 2u, m - 1u) * k_len;
    let r3 = min(row0 + 3u, m - 1u) * k_len;
    let r4 = min(row0 + 4u, m - 1u) * k_len;
    let r5 = min(row0 + 5u, m - 1u) * k_len;
    let r6 = min(row0 + 6u, m - 1u) * k_len;
    let r7 = min(row0 + 7u, m - 1u) * k_len;
    var acc_a0 = vec4<f32>(0.0);
    var acc_b0 = vec4<f32>(0.0);
    var acc_a1 = vec4<f32>(0.0);
    var acc_b1 = vec4<f32>(0.0);
    var acc_a2 = vec4<f32>(0.0);
    var acc_b2 = vec4<f32>(0.0);
    var acc_a3 = vec4<f32>(0.0);
    var acc_b3 = vec4<f32>(0.0);
    var acc_a4 = vec4<f32>(0.0);
    var acc_b4 = vec4<f32>(0.0);
    var acc_a5 = vec4<f32>(0.0);
    var acc_b5 = vec4<f32>(0.0);
    var acc_a6 = vec4<f32>(0.0);
    var acc_b6 = vec4<f32>(0.0);
    var acc_a7 = vec4<f32>(0.0);
    var acc_b7 = vec4<f32>(0.0);
    var w = dims.w_offset / 4u + dims.r_begin * n4;
    for (var k = dims.r_begin; k < dims.r_end; k++) {
        let wa = params[w + ca];
        let wb = params[w + cb_load];
        let x0 = x[r0 + k];
        let x1 = x[r1 + k];
        let x2 = x[r2 + k];
        let x3 = x[r3 + k];
        let x4 = x[r4 + k];
        let x5 = x[r5 + k];
        let x6 = x[r6 + k];
        let x7 = x[r7 + k];
        acc_a0 += x0 * wa;
        acc_b0 += x0 * wb;
        acc_a1 += x1 * wa;
        acc_b1 += x1 * wb;
        acc_a2 += x2 * wa;
        acc_b2 += x2 * wb;
        acc_a3 += x3 * wa;
        acc_b3 += x3 * wb;
        acc_a4 += x4 * wa;
        acc_b4 += x4 * wb;
        acc_a5 += x5 * wa;
        acc_b5 += x5 * wb;
        acc_a6 += x6 * wa;
        acc_b6 += x6 * wb;
        acc_a7 += x7 * wa;
        acc_b7 += x7 * wb;
        w += n4;
    }
    var bias_a = vec4<f32>(0.0);
    var bias_b = vec4<f32>(0.0);
    if (dims.flags & (FLAG_FIRST | FLAG_GRAD_INPUT)) == FLAG_FIRST {
        let bias4 = dims.b_offset / 4u;
        bias_a = params[bias4 + ca];
        bias_b = params[bias4 + cb_load];
    }
    store_forward(row0 + 0u, ca, cb, acc_a0 + bias_a, acc_b0 + bias_b);
    store_forward(row0 + 1u, ca, cb, acc_a1 + bias_a, acc_b1 + bias_b);
    store_forward(row0 + 2u, ca, cb, acc_a2 + bias_a, acc_b2 + bias_b);
    store_forward(row0 + 3u, ca, cb, acc_a3 + bias_a, acc_b3 + bias_b);
    store_forward(row0 + 4u, ca, cb, acc_a4 + bias_a, acc_b4 + bias_b);
    store_forward(row0 + 5u, ca, cb, acc_a5 + bias_a, acc_b5 + bias_b);
    store_forward(row0 + 6u, ca, cb, acc_a6 + bias_a, acc_b6 + bias_b);
    store_forward(row0 + 7u, ca, cb, acc_a7 + bias_a, acc_b7 + bias_b);
}

// The activation parameter: the learned α in the parameters, or the override constant.
fn act_param() -> f32 {
    if dims.alpha_learned != 0u {
        return params[dims.alpha_offset / 4u][dims.alpha_offset % 4u];
    }
    return ACT_P;
}

// Stores vec4 columns ca and (if in range) cb of one row (see store_vec).
fn store_forward(row: u32, ca: u32, cb: u32, za: vec4<f32>, zb: vec4<f32>) {
    if row >= dims.batch {
        return;
    }
    let n4 = dims.fan_out / 4u;
    let base = row * n4;
    let p = act_param();
    store_vec(base + ca, za, p);
    if cb < n4 {
        store_vec(base + cb, zb, p);
    }
}

// One vec4 of the output: the partial sum, added to the running sum unless FLAG_FIRST; on the
// LAST part Y = act(Z) (and Z kept when store_z), or for grad_input dZ_prev = sum ⊙ act'(Z_prev).
fn store_vec(i: u32, part: vec4<f32>, p: f32) {
    let grad = (dims.flags & FLAG_GRAD_INPUT) != 0u;
    let first = (dims.flags & FLAG_FIRST) != 0u;
    var zv = part;
    if !first {
        if grad {
            zv += y[i];
        } else {
            zv += z[i];
        }
    }
    if (dims.flags & FLAG_LAST) == 0u {
        if grad {
            y[i] = zv;
        } else {
            z[i] = zv;
        }
        return;
    }
    if grad {
        y[i] = zv * act_grad4(z[i], p);
        return;
    }
    if dims.store_z != 0u || !first {
        z[i] = zv;
    }
    y[i] = act4(zv, p);
}

// dW[k, :] = Σ_b X[b, k] dZ[b, :]; the blocks holding row k = 0 also sum db = Σ_b dZ[b, :].
// Grid: x over 64-column blocks of fan_out, y (spilling into z) over 64-row blocks of fan_in.
@compute @workgroup_size(WG_X, WG_Y)
fn grad_weights(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let k_len = dims.fan_in;
    let n4 = dims.fan_out / 4u;
    let tile_row = wid.y + wid.z * nwg.y;
    let k0 = (tile_row * WG_Y + lid.y) * ROWS;
    let ca = wid.x * 2u * WG_X + lid.x;
    let cb = ca + WG_X;
    if k0 >= k_len || ca >= n4 {
        return;
    }
    let cb_load = min(cb, n4 - 1u);
    let kr0 = min(k0 + 0u, k_len - 1u);
    let kr1 = min(k0 + 1u, k_len - 1u);
    let kr2 = min(k0 + 2u, k_len - 1u);
    let kr3 = min(k0 + 3u, k_len - 1u);
    let kr4 = min(k0 + 4u, k_len - 1u);
    let kr5 = min(k0 + 5u, k_len - 1u);
    let kr6 = min(k0 + 6u, k_len - 1u);
    let kr7 = min(k0 + 7u, k_len - 1u);
    var acc_a0 = vec4<f32>(0.0);
    var acc_b0 = vec4<f32>(0.0);
    var acc_a1 = vec4<f32>(0.0);
    var acc_b1 = vec4<f32>(0.0);
    var acc_a2 = vec4<f32>(0.0);
    var acc_b2 = vec4<f32>(0.0);
    var acc_a3 = vec4<f32>(0.0);
    var acc_b3 = vec4<f32>(0.0);
    var acc_a4 = vec4<f32>(0.0);
    var acc_b4 = vec4<f32>(0.0);
    var acc_a5 = vec4<f32>(0.0);
    var acc_b5 = vec4<f32>(0.0);
    var acc_a6 = vec4<f32>(0.0);
    var acc_b6 = vec4<f32>(0.0);
    var acc_a7 = vec4<f32>(0.0);
    var acc_b7 = vec4<f32>(0.0);
    var db_a = vec4<f32>(0.0);
    var db_b = vec4<f32>(0.0);
    for (var b = dims.r_begin; b < dims.r_end; b++) {
        let da = dz[b * n4 + ca];
        let dbv = dz[b * n4 + cb_load];
        db_a += da;
        db_b += dbv;
        let xr = b * k_len;
        let x0 = x[xr + kr0];
        let x1 = x[xr + kr1];
        let x2 = x[xr + kr2];
        let x3 = x[xr + kr3];
        let x4 = x[xr + kr4];
        let x5 = x[xr + kr5];
        let x6 = x[xr + kr6];
        let x7 = x[xr + kr7];
        acc_a0 += x0 * da;
        acc_b0 += x0 * dbv;
        acc_a1 += x1 * da;
        acc_b1 += x1 * dbv;
        acc_a2 += x2 * da;
        acc_b2 += x2 * dbv;
        acc_a3 += x3 * da;
        acc_b3 += x3 * dbv;
        acc_a4 += x4 * da;
        acc_b4 += x4 * dbv;
        acc_a5 += x5 * da;
        acc_b5 += x5 * dbv;
        acc_a6 += x6 * da;
        acc_b6 += x6 * dbv;
        acc_a7 += x7 * da;
        acc_b7 += x7 * dbv;
    }
    store_dw(k0 + 0u, ca, cb, acc_a0, acc_b0);
    store_dw(k0 + 1u, ca, cb, acc_a1, acc_b1);
    store_dw(k0 + 2u, ca, cb, acc_a2, acc_b2);
    store_dw(k0 + 3u, ca, cb, acc_a3, acc_b3);
    store_dw(k0 + 4u, ca, cb, acc_a4, acc_b4);
    store_dw(k0 + 5u, ca, cb, acc_a5, acc_b5);
    store_dw(k0 + 6u, ca, cb, acc_a6, acc_b6);
    store_dw(k0 + 7u, ca, cb, acc_a7, acc_b7);
    if k0 == 0u {
        let bias4 = dims.b_offset / 4u;
        put_grad(bias4 + ca, db_a);
        if cb < n4 {
            put_grad(bias4 + cb, db_b);
        }
    }
}

// Stores vec4 columns ca and (if in range) cb of row k of dW.
fn store_dw(k: u32, ca: u32, cb: u32, va: vec4<f32>, vb: vec4<f32>) {
    if k >= dims.fan_in {
        return;
    }
    let n4 = dims.fan_out / 4u;
    let base = dims.w_offset / 4u + k * n4;
    put_grad(base + ca, va);
    if cb < n4 {
        put_grad(base + cb, vb);
    }
}

// Writes a gradient vec4: overwrites on the FIRST part of the batch, accumulates after it.
fn put_grad(i: u32, v: vec4<f32>) {
    if (dims.flags & FLAG_FIRST) != 0u {
        grads[i] = v;
    } else {
        grads[i] += v;
    }
}
