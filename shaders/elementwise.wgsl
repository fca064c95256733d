// elementwise.wgsl: standalone activation forward and backward over whole buffers.
//
// Needs activations.wgsl prepended (the host does it).
//
// Buffers are arrays of vec4<f32>: the host pads every buffer to a multiple of 4 floats, so
// each invocation handles one vec4 and the padding lanes compute harmless values nobody reads.
// The grid is 2-D (x, y) so more than max_compute_workgroups_per_dimension workgroups fit:
// the linear workgroup index is wid.y * num_workgroups.x + wid.x.
//
// Bindings (group 0)
//   entry `forward`:  0 src: x (read)   1 dst: y = f(x) (read_write)             2 params (uniform)
//   entry `backward`: 0 src: z (read)   3 grad_in: dy (read)  1 dst: dx = dy * f'(z) (read_write)
//                                                                                2 params (uniform)

const WG: u32 = 256u;

struct Params {
    // Number of vec4 elements to process.
    n_vec4: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> grad_in: array<vec4<f32>>;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_index(wid, nwg, lid);
    if i < params.n_vec4 {
        dst[i] = act4(src[i], ACT_P);
    }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_index(wid, nwg, lid);
    if i < params.n_vec4 {
        dst[i] = grad_in[i] * act_grad4(src[i], ACT_P);
    }
}

// A plain vec4 copy: the bandwidth baseline the activation kernels are measured against.
@compute @workgroup_size(WG)
fn copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_index(wid, nwg, lid);
    if i < params.n_vec4 {
        dst[i] = src[i];
    }
}
