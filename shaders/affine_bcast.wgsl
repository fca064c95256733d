// affine_bcast.wgsl: the fused forward (and the dX = dZ·Wᵀ of the backward) with the left
// operand shared across a subgroup: for CPU adapters whose subgroups are 8 SIMD lanes
// (lavapipe), where every storage load is performed lane by lane (~27 ns per vec4 for 8
// lanes) but a subgroupBroadcast costs ~4 ns.
//
// Needs structs.wgsl and activations.wgsl prepended (the host does it), the SUBGROUP feature and
// subgroups of exactly 8 invocations; the host offers this core only then. Same Layer semantics
// as affine_act.wgsl (r_begin..r_end of the reduction per dispatch, FLAG_FIRST / FLAG_LAST /
// FLAG_GRAD_INPUT). fan_in, fan_out and the parameter offsets are multiples of 4, and so are
// the reduction parts the host asks for.
//
// A workgroup of 64 invocations (8 subgroups; 1-D, as subgroup builtins require) owns 64 rows ×
// 64 columns; subgroup s owns rows 8s .. 8s + 7 and
// lane l of it owns vec4 columns l and l + 8 of the block. Per 4 steps of k, lane l loads one
// vec4 of X (its own row, k .. k + 3) and 8 vec4s of W (its 2 columns for the 4 k), then takes
// each of the 8 rows' X vec4 from the lane that loaded it with subgroupBroadcast: 9 loads and
// 8 broadcasts for 256 multiply-adds per lane, where the vec4 core needs 40 loads.
// Control flow stays uniform across each subgroup (clamped loads, skipped stores), as
// subgroup operations require.
//
// Bindings (group 0), entry `forward` (the matmul forward signature)
//   0 x:      array<vec4<f32>>  read        [batch × fan_in]
//   1 params: array<vec4<f32>>  read        flat parameters
//   2 z:      array<vec4<f32>>  read_write  [batch × fan_out]
//   3 y:      array<vec4<f32>>  read_write  [batch × fan_out]
//   4 dims:   Layer             uniform

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> z: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> dims: Layer;

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32) {
    let m = dims.batch;
    let k4_len = dims.fan_in / 4u;
    let n4 = dims.fan_out / 4u;
    let tile_row = wid.y + wid.z * nwg.y;
    let row0 = tile_row * 64u + sg * 8u;
    let ca = wid.x * 16u + lane;
    let cb = ca + 8u;
    // Clamped: lanes past the edge load duplicates, so every lane reaches every broadcast.
    let ca_load = min(ca, n4 - 1u);
    let cb_load = min(cb, n4 - 1u);
    let x_row = min(row0 + lane, m - 1u) * k4_len;
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
    var w = dims.w_offset / 4u + dims.r_begin * n4;
    for (var k4 = dims.r_begin / 4u; k4 < dims.r_end / 4u; k4++) {
        let xv = x[x_row + k4];
        let wa0 = params[w + ca_load];
        let wb0 = params[w + cb_load];
        w += n4;
        let wa1 = params[w + ca_load];
        let wb1 = params[w + cb_load];
        w += n4;
        let wa2 = params[w + ca_load];
        let wb2 = params[w + cb_load];
        w += n4;
        let wa3 = params[w + ca_load];
        let wb3 = params[w + cb_load];
        w += n4;
        let x0 = subgroupBroadcast(xv, 0u);
        a0 += x0.x * wa0 + x0.y * wa1 + x0.z * wa2 + x0.w * wa3;
        b0 += x0.x * wb0 + x0.y * wb1 + x0.z * wb2 + x0.w * wb3;
        let x1 = subgroupBroadcast(xv, 1u);
        a1 += x1.x * wa0 + x1.y * wa1 + x1.z * wa2 + x1.w * wa3;
        b1 += x1.x * wb0 + x1.y * wb1 + x1.z * wb2 + x1.w * wb3;
        let x2 = subgroupBroadcast(xv, 2u);
        a2 += x2.x * wa0 + x2.y * wa1 + x2.z * wa2 + x2.w * wa3;
        b2 += x2.x * wb0 + x2.y * wb1 + x2.z * wb2 + x2.w * wb3;
        let x3 = subgroupBroadcast(xv, 3u);
        a3 += x3.x * wa0 + x3.y * wa1 + x3.z * wa2 + x3.w * wa3;
        b3 += x3.x * wb0 + x3.y * wb1 + x3.z * wb2 + x3.w * wb3;
        let x4 = subgroupBroadcast(xv, 4u);
        a4 += x4.x * wa0 + x4.y * wa1 + x4.z * wa2 + x4.w * wa3;
        b4 += x4.x * wb0 + x4.y * wb1 + x4.z * wb2 + x4.w * wb3;
        let x5 = subgroupBroadcast(xv, 5u);
        a5 += x5.x * wa0 + x5.y * wa1 + x5.z * wa2 + x5.w * wa3;
        b5 += x5.x * wb0 + x5.y * wb1 + x5.z * wb2 + x5.w * wb3;
        let x6 = subgroupBroadcast(xv, 6u);
        a6 += x6.x * wa0 + x6.y * wa1 + x6.z * wa2 + x6.w * wa3;
        b6 += x6.x * wb0 + x6.y * wb1 + x6.z * wb2 + x6.w * wb3;
        let x7 = subgroupBroadcast(xv, 7u);
        a7 += x7.x * wa0 + x7.y * wa1 + x7.z * wa2 + x7.w * wa3;
        b7 += x7.x * wb0 + x7.y * wb1 + x7.z * wb2 + x7.w * wb3;
    }
    var bias_a = vec4<f32>(0.0);
    var bias_b = vec4<f32>(0.0);
    if (dims.flags & (FLAG_FIRST | FLAG_GRAD_INPUT)) == FLAG_FIRST {
        bias_a = params[dims.b_offset / 4u + ca_load];
        bias_b = params[dims.b_offset / 4u + cb_load];
    }
    let p = act_param();
    store(row0 + 0u, ca, a0 + bias_a, p);
    store(row0 + 0u, cb, b0 + bias_b, p);
    store(row0 + 1u, ca, a1 + bias_a, p);
    store(row0 + 1u, cb, b1 + bias_b, p);
    store(row0 + 2u, ca, a2 + bias_a, p);
    store(row0 + 2u, cb, b2 + bias_b, p);
    store(row0 + 3u, ca, a3 + bias_a, p);
    store(row0 + 3u, cb, b3 + bias_b, p);
    store(row0 + 4u, ca, a4 + bias_a, p);
    store(row0 + 4u, cb, b4 + bias_b, p);
    store(row0 + 5u, ca, a5 + bias_a, p);
    store(row0 + 5u, cb, b5 + bias_b, p);
    store(row0 + 6u, ca, a6 + bias_a, p);
    store(row0 + 6u, cb, b6 + bias_b, p);
    store(row0 + 7u, ca, a7 + bias_a, p);
    store(row0 + 7u, cb, b7 + bias_b, p);
}

// The activation parameter: the learned α in the parameters, or the override constant.
fn act_param() -> f32 {
    if dims.alpha_learned != 0u && (dims.flags & FLAG_GRAD_INPUT) == 0u {
        return params[dims.alpha_offset / 4u][dims.alpha_offset % 4u];
    }
    return ACT_P;
}

// One vec4 of the output, if it is inside it: the partial sum, added to the running sum
// unless FLAG_FIRST; on the LAST part Y = act(Z) (and Z kept when store_z), or for grad_input
// dZ_prev = sum ⊙ act'(Z_prev).
fn store(row: u32, col4: u32, part: vec4<f32>, p: f32) {
    let n4 = dims.fan_out / 4u;
    if row >= dims.batch || col4 >= n4 {
        return;
    }
    let i = row * n4 + col4;
    let grad = (dims.flags & FLAG_GRAD_INPUT) != 0u;
    let first = (dims.flags & FLAG_FIRST) != 0u;
    var v = part;
    if !first {
        if grad {
            v += y[i];
        } else {
            v += z[i];
        }
    }
    if (dims.flags & FLAG_LAST) == 0u {
        if grad {
            y[i] = v;
        } else {
            z[i] = v;
        }
        return;
    }
    if grad {
        y[i] = v * act_grad4(z[i], p);
        return;
    }
    if dims.store_z != 0u || !first {
        z[i] = v;
    }
    y[i] = act4(v, p);
}
