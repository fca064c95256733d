// affine_bcast_grad.wgsl: dW = Xᵀ·dZ and db = Σ_rows dZ with X shared across a subgroup: the
// grad_weights entry of the `bcast` matmul core (affine_bcast.wgsl has its forward), for CPU
// adapters whose subgroups are 8 SIMD lanes (lavapipe), where storage loads run lane by lane
// but a subgroupBroadcast is cheap.
//
// Needs structs.wgsl and activations.wgsl prepended (the host does it: every matmul core's
// pipelines set the activation's override constants), the SUBGROUP feature and subgroups of
// exactly 8 invocations; the host offers this core only then. Same Layer semantics as the other
// grad_weights entries: the batch rows r_begin..r_end of this dispatch are summed, FLAG_FIRST
// overwrites, later parts accumulate. fan_out and the parameter offsets are multiples of 4.
//
// A workgroup of 64 invocations (8 subgroups; 1-D, as subgroup builtins require) owns 64 rows
// of dW (inputs k) × 64 columns; subgroup s owns rows 8s .. 8s + 7 and lane l of it vec4
// columns l and l + 8 of the block. Per batch row, lane l loads X[b, k0 + l] (one scalar: 8
// inputs for the subgroup) and its 2 vec4s of dZ, then takes each input's X from the lane that
// loaded it: 3 loads and 8 broadcasts for 64 multiply-adds per lane, where the vec4 core needs
// 10 loads. Control flow stays uniform across each subgroup (clamped loads, skipped stores).
//
// Bindings (group 0), entry `grad_weights` (the matmul grad_weights signature)
//   0 x:      array<f32>        read        [batch × fan_in]
//   5 dz:     array<vec4<f32>>  read        [batch × fan_out]
//   6 grads:  array<vec4<f32>>  read_write  flat gradients
//   4 dims:   Layer             uniform

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<uniform> dims: Layer;
@group(0) @binding(5) var<storage, read> dz: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> grads: array<vec4<f32>>;

@compute @workgroup_size(64)
fn grad_weights(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let k_len = dims.fan_in;
    let n4 = dims.fan_out / 4u;
    let tile_row = wid.y + wid.z * nwg.y;
    let k0 = tile_row * 64u + sg * 8u;
    let ca = wid.x * 16u + lane;
    let cb = ca + 8u;
    let ca_load = min(ca, n4 - 1u);
    let cb_load = min(cb, n4 - 1u);
    let k_load = min(k0 + lane, k_len - 1u);
    var a0 = vec4<f32>(0.0);
    var b0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var b1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var b3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var b4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var b5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var b6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var b7 = vec4<f32>(0.0);
    var db_a = vec4<f32>(0.0);
    var db_b = vec4<f32>(0.0);
    for (var row = dims.r_begin; row < dims.r_end; row++) {
        let xv = x[row * k_len + k_load];
        let da = dz[row * n4 + ca_load];
        let dbv = dz[row * n4 + cb_load];
        db_a += da;
        db_b += dbv;
        let x0 = subgroupBroadcast(xv, 0u);
        a0 += x0 * da;
        b0 += x0 * dbv;
        let x1 = subgroupBroadcast(xv, 1u);
        a1 += x1 * da;
        b1 += x1 * dbv;
        let x2 = subgroupBroadcast(xv, 2u);
        a2 += x2 * da;
        b2 += x2 * dbv;
        let x3 = subgroupBroadcast(xv, 3u);
        a3 += x3 * da;
        b3 += x3 * dbv;
        let x4 = subgroupBroadcast(xv, 4u);
        a4 += x4 * da;
        b4 += x4 * dbv;
        let x5 = subgroupBroadcast(xv, 5u);
        a5 += x5 * da;
        b5 += x5 * dbv;
        let x6 = subgroupBroadcast(xv, 6u);
        a6 += x6 * da;
        b6 += x6 * dbv;
        let x7 = subgroupBroadcast(xv, 7u);
        a7 += x7 * da;
        b7 += x7 * dbv;
    }
    store_dw(k0 + 0u, ca, a0);
    store_dw(k0 + 0u, cb, b0);
    store_dw(k0 + 1u, ca, a1);
    store_dw(k0 + 1u, cb, b1);
    store_dw(k0 + 2u, ca, a2);
    store_dw(k0 + 2u, cb, b2);
    store_dw(k0 + 3u, ca, a3);
    store_dw(k0 + 3u, cb, b3);
    store_dw(k0 + 4u, ca, a4);
    store_dw(k0 + 4u, cb, b4);
    store_dw(k0 + 5u, ca, a5);
    store_dw(k0 + 5u, cb, b5);
    store_dw(k0 + 6u, ca, a6);
    store_dw(k0 + 6u, cb, b6);
    store_dw(k0 + 7u, ca, a7);
    store_dw(k0 + 7u, cb, b7);
    if k0 == 0u {
        store_db(ca, db_a);
        store_db(cb, db_b);
    }
}

// One vec4 of row k of dW, if it is inside the matrix.
fn store_dw(k: u32, col4: u32, v: vec4<f32>) {
    let n4 = dims.fan_out / 4u;
    if k >= dims.fan_in || col4 >= n4 {
        return;
    }
    put_grad(dims.w_offset / 4u + k * n4 + col4, v);
}

// One vec4 of db, if it is inside the vector.
fn store_db(col4: u32, v: vec4<f32>) {
    if col4 >= dims.fan_out / 4u {
        return;
    }
    put_grad(dims.b_offset / 4u + col4, v);
}

// Writes a gradient vec4: overwrites on the FIRST part of the batch, accumulates after it.
fn put_grad(i: u32, v: vec4<f32>) {
    if (dims.flags & FLAG_FIRST) != 0u {
        grads[i] = v;
    } else {
        grads[i] += v;
    }
}
