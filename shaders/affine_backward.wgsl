// affine_backward.wgsl: gradients of one layer  Y = act(X·W + b).
//
// Needs structs.wgsl and activations.wgsl prepended (the host does it). Each dispatch sums
// the part r_begin..r_end of its reduction (batch rows for dW, columns of dZ for grad_input):
// FLAG_FIRST overwrites, later parts accumulate, FLAG_LAST applies act' (structs.wgsl).
//
// The backward pass takes dZ = dL/dZ of this layer (for the output layer the loss kernel
// writes it; for hidden layers `grad_input` of the next layer writes it) and produces
//   grad_weights:  dW = Xᵀ·dZ  and  db = Σ_rows dZ          (into the flat gradient buffer)
//   grad_input:    dZ_prev = (dZ·Wᵀ) ⊙ act'(Z_prev)         (skipped for the first layer)
// so dZ = dY ⊙ act'(Z) is fused into the product that makes dY: each element of dZ is
// computed once, in the epilogue of grad_input, with ACT set to the *previous* layer's
// activation. Both kernels use the same 4×4 register blocking as affine_act.wgsl: 4
// consecutive rows and 4 columns strided by WG_X per invocation, so neighbouring invocations
// touch neighbouring columns.
//
// A learned pReLU α of the previous layer (alpha_learned = 1; grad_input's uniform carries the
// previous layer's alpha_offset) is read from params instead of ACT_P, and grad_input also
// makes dα = Σ dY_prev ⊙ min(0, Z_prev): each invocation writes the sum over its outputs to
// partials[its linear index in the grid], and reduce_alpha (alpha.wgsl) adds them up.
//
// Bindings (group 0), entry `grad_weights` (the layout every matmul core's grad_weights shares)
//   0 x:      array<f32>  read        [batch × fan_in]   (this layer's input)
//   5 dz:     array<f32>  read        [batch × fan_out]
//   6 grads:  array<f32>  read_write  flat gradients (same layout as the parameters)
//   4 dims:   Layer       uniform
// Bindings (group 0), entry `grad_input`
//   5 dz:      array<f32> read        [batch × fan_out]
//   1 params:  array<f32> read        flat parameters (W at w_offset)
//   2 z_prev:  array<f32> read        [batch × fan_in]   (previous layer's pre-activation)
//   3 dz_prev: array<f32> read_write  [batch × fan_in]
//   4 dims:    Layer      uniform
//   7 partials: array<f32> read_write one per invocation of the grid (written when alpha_learned)

const WG_X: u32 = 8u;
const WG_Y: u32 = 8u;
const TB: u32 = 4u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> z_prev: array<f32>;
@group(0) @binding(3) var<storage, read_write> dz_prev: array<f32>;
@group(0) @binding(4) var<uniform> dims: Layer;
@group(0) @binding(5) var<storage, read> dz: array<f32>;
@group(0) @binding(6) var<storage, read_write> grads: array<f32>;
@group(0) @binding(7) var<storage, read_write> partials: array<f32>;

const LANES = vec4<u32>(0u, 1u, 2u, 3u);

// dW[k, n] = Σ_b X[b, k] dZ[b, n]; the blocks with k0 = 0 also sum db[n] = Σ_b dZ[b, n].
// Grid: x over column blocks of fan_out, y (spilling into z) over row blocks of fan_in.
@compute @workgroup_size(WG_X, WG_Y)
fn grad_weights(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let k_len = dims.fan_in;
    let n = dims.fan_out;
    let tile_row = wid.y + wid.z * nwg.y;
    let k0 = (tile_row * WG_Y + lid.y) * TB;
    let n0 = wid.x * WG_X * TB + lid.x;
    if k0 >= k_len || n0 >= n {
        return;
    }
    let ks = min(vec4<u32>(k0) + LANES, vec4<u32>(k_len - 1u));
    let ns = min(vec4<u32>(n0) + LANES * WG_X, vec4<u32>(n - 1u));
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var dbias = vec4<f32>(0.0);
    for (var b = dims.r_begin; b < dims.r_end; b++) {
        let xr = b * k_len;
        let dr = b * n;
        let xv = vec4<f32>(x[xr + ks.x], x[xr + ks.y], x[xr + ks.z], x[xr + ks.w]);
        let dv = vec4<f32>(dz[dr + ns.x], dz[dr + ns.y], dz[dr + ns.z], dz[dr + ns.w]);
        acc0 += xv.x * dv;
        acc1 += xv.y * dv;
        acc2 += xv.z * dv;
        acc3 += xv.w * dv;
        dbias += dv;
    }
    store_dw(k0, n0, acc0);
    store_dw(k0 + 1u, n0, acc1);
    store_dw(k0 + 2u, n0, acc2);
    store_dw(k0 + 3u, n0, acc3);
    if k0 == 0u {
        for (var j = 0u; j < TB; j++) {
            let col = n0 + j * WG_X;
            if col < n {
                put_grad(dims.b_offset + col, dbias[j]);
            }
        }
    }
}

// Stores columns n0, n0 + WG_X, n0 + 2·WG_X, n0 + 3·WG_X of row k of dW.
fn store_dw(k: u32, n0: u32, v: vec4<f32>) {
    if k >= dims.fan_in {
        return;
    }
    let base = dims.w_offset + k * dims.fan_out;
    for (var j = 0u; j < TB; j++) {
        let col = n0 + j * WG_X;
        if col < dims.fan_out {
            put_grad(base + col, v[j]);
        }
    }
}

// Writes a gradient: overwrites on the FIRST part of the batch, accumulates after it.
fn put_grad(i: u32, v: f32) {
    if (dims.flags & FLAG_FIRST) != 0u {
        grads[i] = v;
    } else {
        grads[i] += v;
    }
}

// dZ_prev[b, k] = (Σ_n dZ[b, n] W[k, n]) · act'(Z_prev[b, k]).
// Grid: x over column blocks of fan_in, y (spilling into z) over row blocks of the batch.
@compute @workgroup_size(WG_X, WG_Y)
fn grad_input(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let m = dims.batch;
    let k_len = dims.fan_in;
    let n = dims.fan_out;
    let tile_row = wid.y + wid.z * nwg.y;
    let b0 = (tile_row * WG_Y + lid.y) * TB;
    let k0 = wid.x * WG_X * TB + lid.x;
    let invocation = (tile_row * nwg.x + wid.x) * WG_X * WG_Y + lid.y * WG_X + lid.x;
    if b0 >= m || k0 >= k_len {
        if dims.alpha_learned != 0u {
            partials[invocation] = 0.0;
        }
        return;
    }
    let rows = min(vec4<u32>(b0) + LANES, vec4<u32>(m - 1u)) * n;
    let wrows = dims.w_offset + min(vec4<u32>(k0) + LANES * WG_X, vec4<u32>(k_len - 1u)) * n;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var j = dims.r_begin; j < dims.r_end; j++) {
        let dv = vec4<f32>(dz[rows.x + j], dz[rows.y + j], dz[rows.z + j], dz[rows.w + j]);
        let wv = vec4<f32>(params[wrows.x + j], params[wrows.y + j], params[wrows.z + j], params[wrows.w + j]);
        acc0 += dv.x * wv;
        acc1 += dv.y * wv;
        acc2 += dv.z * wv;
        acc3 += dv.w * wv;
    }
    let p = act_param();
    let d_alpha = store_dx(b0, k0, acc0, p) + store_dx(b0 + 1u, k0, acc1, p)
        + store_dx(b0 + 2u, k0, acc2, p) + store_dx(b0 + 3u, k0, acc3, p);
    if dims.alpha_learned != 0u {
        partials[invocation] = d_alpha;
    }
}

// The previous layer's activation parameter: its learned α, or the override constant.
fn act_param() -> f32 {
    if dims.alpha_learned != 0u {
        return params[dims.alpha_offset];
    }
    return ACT_P;
}

// Stores columns k0, k0 + WG_X, k0 + 2·WG_X, k0 + 3·WG_X of row b of dZ_prev = dY ⊙ act'(Z_prev);
// returns Σ dY ⊙ min(0, Z_prev) over those of them inside the matrix (the share of dα).
fn store_dx(b: u32, k0: u32, dy: vec4<f32>, p: f32) -> f32 {
    if b >= dims.batch {
        return 0.0;
    }
    let base = b * dims.fan_in;
    let ks = min(vec4<u32>(k0) + LANES * WG_X, vec4<u32>(dims.fan_in - 1u));
    let zv = vec4<f32>(z_prev[base + ks.x], z_prev[base + ks.y], z_prev[base + ks.z], z_prev[base + ks.w]);
    var sum = dy;
    if (dims.flags & FLAG_FIRST) == 0u {
        sum += vec4<f32>(dz_prev[base + ks.x], dz_prev[base + ks.y], dz_prev[base + ks.z], dz_prev[base + ks.w]);
    }
    let last = (dims.flags & FLAG_LAST) != 0u;
    var g = sum;
    if last {
        g = sum * act_grad4(zv, p);
    }
    let da = sum * min(zv, vec4<f32>(0.0));
    var d_alpha = 0.0;
    for (var j = 0u; j < TB; j++) {
        let col = k0 + j * WG_X;
        if col < dims.fan_in {
            dz_prev[base + col] = g[j];
            d_alpha += da[j];
        }
    }
    if !last {
        return 0.0;
    }
    return d_alpha;
}
