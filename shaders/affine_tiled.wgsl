// affine_tiled.wgsl: the layer kernels shaped for hardware GPUs: tiles of both operands
// staged in workgroup memory, a 4 × 4 register block per invocation.
//
// Needs structs.wgsl and activations.wgsl prepended (the host does it). Same entries, bindings
// and Layer semantics as affine_act.wgsl (r_begin..r_end of the reduction per dispatch,
// FLAG_FIRST / FLAG_LAST / FLAG_GRAD_INPUT), and like it any shape works: scalar loads, so no
// alignment of fan_out or the offsets is needed.
//
// A workgroup of 16 × 16 invocations owns a 64 × 64 block of outputs. Per step it stages a
// 64 × 16 tile of the left operand and a 16 × 64 tile of the right one (4 KiB each, 8 KiB in
// all: inside WebGPU's default 16 KiB), every invocation loading 4 + 4 elements with
// neighbouring invocations on neighbouring addresses (coalesced), then each invocation runs 16
// steps of a 4 × 4 outer product from workgroup memory: 64 multiply-adds per 8 shared loads.
// Its outputs are rows ty·4 .. ty·4 + 3 and columns tx, tx + 16, tx + 32, tx + 48 of the
// block, so the stores of a row of invocations are coalesced too. Out-of-range elements are
// staged as zeros; out-of-range outputs are not stored.
// CPU adapters pay as much for workgroup memory as for storage and a lot for barriers; there
// the autotuner picks another core.
//
// Bindings (group 0), entry `forward`:  Z = X·W + b, Y = act(Z)
//   0 x:      array<f32>  read        [batch × fan_in]
//   1 params: array<f32>  read        flat parameters
//   2 z:      array<f32>  read_write  [batch × fan_out]
//   3 y:      array<f32>  read_write  [batch × fan_out]
//   4 dims:   Layer       uniform
// Bindings (group 0), entry `grad_weights`:  dW = Xᵀ·dZ, db = Σ_rows dZ
//   0 x:      array<f32>  read        [batch × fan_in]
//   5 dz:     array<f32>  read        [batch × fan_out]
//   6 grads:  array<f32>  read_write  flat gradients
//   4 dims:   Layer       uniform

const T: u32 = 16u;        // invocations per side of the workgroup
const BLOCK: u32 = 64u;    // outputs per side of the workgroup's block
const TK: u32 = 16u;       // reduction steps per staged tile

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> dims: Layer;
@group(0) @binding(5) var<storage, read> dz: array<f32>;
@group(0) @binding(6) var<storage, read_write> grads: array<f32>;

// a_tile[kk][r]: the left operand, 64 rows of the block by 16 reduction steps (stored by step
// so the inner loop reads 4 consecutive rows); b_tile[kk][c]: the right operand.
var<workgroup> a_tile: array<array<f32, BLOCK>, TK>;
var<workgroup> b_tile: array<array<f32, BLOCK>, TK>;

struct Block {
    row0: u32,   // first output row of the workgroup
    col0: u32,   // first output column of the workgroup
    ty: u32,
    tx: u32,
    t: u32,      // linear invocation index
}

fn block_of(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> Block {
    let tile_row = wid.y + wid.z * nwg.y;
    return Block(tile_row * BLOCK, wid.x * BLOCK, lid.y, lid.x, lid.y * T + lid.x);
}

// The 4 × 4 accumulators of one invocation: acc[i] holds row ty·4 + i, columns tx + 16·j.
struct Acc {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

// 16 steps of the outer product from the staged tiles.
fn multiply_tiles(b: Block, acc: ptr<function, Acc>) {
    for (var kk = 0u; kk < TK; kk++) {
        let a = vec4<f32>(a_tile[kk][b.ty * 4u], a_tile[kk][b.ty * 4u + 1u],
                          a_tile[kk][b.ty * 4u + 2u], a_tile[kk][b.ty * 4u + 3u]);
        let w = vec4<f32>(b_tile[kk][b.tx], b_tile[kk][b.tx + 16u],
                          b_tile[kk][b.tx + 32u], b_tile[kk][b.tx + 48u]);
        (*acc).r0 += a.x * w;
        (*acc).r1 += a.y * w;
        (*acc).r2 += a.z * w;
        (*acc).r3 += a.w * w;
    }
}

@compute @workgroup_size(T, T)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = block_of(wid, nwg, lid);
    let m = dims.batch;
    let k_len = dims.fan_in;
    let n = dims.fan_out;
    var acc = Acc(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var k0 = dims.r_begin; k0 < dims.r_end; k0 += TK) {
        // Stage X[row0 .. +64, k0 .. +16] and W[k0 .. +16, col0 .. +64]: 1,024 elements each,
        // 4 per invocation; element e = t + 256·i is (e / 16, e % 16) of the X tile and
        // (e / 64, e % 64) of the W tile.
        for (var i = 0u; i < 4u; i++) {
            let e = b.t + 256u * i;
            let ar = e / TK;
            let ak = k0 + e % TK;
            let row = b.row0 + ar;
            var av = 0.0;
            if row < m && ak < dims.r_end {
                av = x[row * k_len + ak];
            }
            a_tile[e % TK][ar] = av;
            let bk = k0 + e / BLOCK;
            let col = b.col0 + e % BLOCK;
            var bv = 0.0;
            if bk < dims.r_end && col < n {
                bv = params[dims.w_offset + bk * n + col];
            }
            b_tile[e / BLOCK][e % BLOCK] = bv;
        }
        workgroupBarrier();
        multiply_tiles(b, &acc);
        workgroupBarrier();
    }
    let p = act_param();
    store_row(b, 0u, acc.r0, p);
    store_row(b, 1u, acc.r1, p);
    store_row(b, 2u, acc.r2, p);
    store_row(b, 3u, acc.r3, p);
}

// The activation parameter: the learned α in the parameters, or the override constant.
fn act_param() -> f32 {
    if dims.alpha_learned != 0u && (dims.flags & FLAG_GRAD_INPUT) == 0u {
        return params[dims.alpha_offset];
    }
    return ACT_P;
}

// Row ty·4 + i of the invocation's block: bias on the FIRST part, the running sum on later
// ones, and the epilogue (act, or act' for grad_input) on the LAST.
fn store_row(b: Block, i: u32, part: vec4<f32>, p: f32) {
    let row = b.row0 + b.ty * 4u + i;
    if row >= dims.batch {
        return;
    }
    let n = dims.fan_out;
    let grad = (dims.flags & FLAG_GRAD_INPUT) != 0u;
    let first = (dims.flags & FLAG_FIRST) != 0u;
    let last = (dims.flags & FLAG_LAST) != 0u;
    for (var j = 0u; j < 4u; j++) {
        let col = b.col0 + b.tx + 16u * j;
        if col >= n {
            continue;
        }
        let idx = row * n + col;
        var v = part[j];
        if first && !grad {
            v += params[dims.b_offset + col];
        }
        if !first {
            v += select(z[idx], y[idx], grad);
        }
        if !last {
            if grad {
                y[idx] = v;
            } else {
                z[idx] = v;
            }
        } else if grad {
            y[idx] = v * act_grad4(vec4<f32>(z[idx]), p).x;
        } else {
            if dims.store_z != 0u || !first {
                z[idx] = v;
            }
            y[idx] = act4(vec4<f32>(v), p).x;
        }
    }
}

// dW[k, c] = Σ_b X[b, k] dZ[b, c] over the batch rows r_begin..r_end; the workgroups of the
// first row block (k < 64) also sum db[c] = Σ_b dZ[b, c]. Output block: 64 rows of fan_in by
// 64 columns of fan_out.
@compute @workgroup_size(T, T)
fn grad_weights(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = block_of(wid, nwg, lid);
    let k_len = dims.fan_in;
    let n = dims.fan_out;
    var acc = Acc(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var db = vec4<f32>(0.0);
    for (var r0 = dims.r_begin; r0 < dims.r_end; r0 += TK) {
        // Stage Xᵀ[row0 .. +64, r0 .. +16] (read along rows of X: element e is batch row
        // r0 + e / 64, input k = row0 + e % 64) and dZ[r0 .. +16, col0 .. +64].
        for (var i = 0u; i < 4u; i++) {
            let e = b.t + 256u * i;
            let br = r0 + e / BLOCK;
            let k = b.row0 + e % BLOCK;
            var av = 0.0;
            if br < dims.r_end && k < k_len {
                av = x[br * k_len + k];
            }
            a_tile[e / BLOCK][e % BLOCK] = av;
            let col = b.col0 + e % BLOCK;
            var bv = 0.0;
            if br < dims.r_end && col < n {
                bv = dz[br * n + col];
            }
            b_tile[e / BLOCK][e % BLOCK] = bv;
        }
        workgroupBarrier();
        multiply_tiles(b, &acc);
        if b.row0 == 0u && b.ty == 0u {
            for (var kk = 0u; kk < TK; kk++) {
                db += vec4<f32>(b_tile[kk][b.tx], b_tile[kk][b.tx + 16u],
                                b_tile[kk][b.tx + 32u], b_tile[kk][b.tx + 48u]);
            }
        }
        workgroupBarrier();
    }
    store_dw(b, 0u, acc.r0);
    store_dw(b, 1u, acc.r1);
    store_dw(b, 2u, acc.r2);
    store_dw(b, 3u, acc.r3);
    if b.row0 == 0u && b.ty == 0u {
        for (var j = 0u; j < 4u; j++) {
            let col = b.col0 + b.tx + 16u * j;
            if col < n {
                put_grad(dims.b_offset + col, db[j]);
            }
        }
    }
}

// Row ty·4 + i of the invocation's block of dW.
fn store_dw(b: Block, i: u32, v: vec4<f32>) {
    let k = b.row0 + b.ty * 4u + i;
    if k >= dims.fan_in {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let col = b.col0 + b.tx + 16u * j;
        if col < dims.fan_out {
            put_grad(dims.w_offset + k * dims.fan_out + col, v[j]);
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
