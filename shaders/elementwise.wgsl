// elementwise.wgsl: standalone activation forward and backward over whole buffers, and a copy.
//
// Needs structs.wgsl and activations.wgsl prepended (the host does it).
//
// Buffers are arrays of vec4<f32>: the host pads every buffer to a multiple of 4 floats, so
// the padding lanes compute harmless values nobody reads. Two layouts of the same work, chosen
// per adapter by timing (src/gpu/stream.rs):
//   `forward`, `backward`, `copy`: one vec4 per invocation, 256 invocations per workgroup
//     (the GPU layout: every load is one coalesced transaction).
//   `forward_lanes`, `backward_lanes`, `copy_lanes`: workgroups of 8 invocations, each workgroup
//     owning `per_group` consecutive vec4s that lane l visits at l, l + 8, l + 16, ... (the CPU
//     adapter layout: one workgroup is one task of a SIMD-8 thread pool, and fewer, longer
//     tasks cost less scheduling; lavapipe runs it 1.2-1.3x faster than the GPU layout).
// The grid is 2-D (x, y) so more than max_compute_workgroups_per_dimension workgroups fit:
// the linear workgroup index is wid.y * num_workgroups.x + wid.x.
//
// Bindings (group 0)
//   entry `forward*`:  0 src: x (read)   1 dst: y = f(x) (read_write)             2 dims (uniform)
//   entry `backward*`: 0 src: z (read)   3 grad_in: dy (read)  1 dst: dx = dy * f'(z) (read_write)
//                                                                                2 dims (uniform)
//   entry `copy*`:     0 src: x (read)   1 dst: y = x (read_write)                2 dims (uniform)

const WG: u32 = 256u;
const LANES: u32 = 8u;

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> dims: StreamDims;
@group(0) @binding(3) var<storage, read> grad_in: array<vec4<f32>>;

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid.x;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_index(wid, nwg, lid);
    if i < dims.n_vec4 {
        dst[i] = act4(src[i], ACT_P);
    }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_index(wid, nwg, lid);
    if i < dims.n_vec4 {
        dst[i] = grad_in[i] * act_grad4(src[i], ACT_P);
    }
}

// A plain vec4 copy: the shader baseline next to copy_buffer_to_buffer.
@compute @workgroup_size(WG)
fn copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = linear_index(wid, nwg, lid);
    if i < dims.n_vec4 {
        dst[i] = src[i];
    }
}

// The range lane `lane` of workgroup (wid, nwg) visits: start, end (exclusive), stride LANES.
fn lane_range(wid: vec3<u32>, nwg: vec3<u32>, lane: u32) -> vec2<u32> {
    let group = wid.y * nwg.x + wid.x;
    let begin = group * dims.per_group;
    let end = min(begin + dims.per_group, dims.n_vec4);
    return vec2<u32>(begin + lane, end);
}

@compute @workgroup_size(LANES)
fn forward_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = lane_range(wid, nwg, lid.x);
    for (var i = r.x; i < r.y; i += LANES) {
        dst[i] = act4(src[i], ACT_P);
    }
}

@compute @workgroup_size(LANES)
fn backward_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = lane_range(wid, nwg, lid.x);
    for (var i = r.x; i < r.y; i += LANES) {
        dst[i] = grad_in[i] * act_grad4(src[i], ACT_P);
    }
}

@compute @workgroup_size(LANES)
fn copy_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = lane_range(wid, nwg, lid.x);
    for (var i = r.x; i < r.y; i += LANES) {
        dst[i] = src[i];
    }
}
