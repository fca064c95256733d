// alpha.wgsl: the gradient of a learned pReLU slope α, from the partial sums grad_input
// (affine_backward.wgsl) wrote, one per invocation of its grid:
//   grads[alpha_offset] = Σ_i partials[i],  i < count.
//
// One workgroup of 256 invocations: each sums a strided slice of the partials, then a tree
// reduction in workgroup memory. Every element of `shared_sums` is written before it is read
// (pipelines are built without zero-initialised workgroup memory).
//
// Needs structs.wgsl prepended (the host does it).
//
// Bindings (group 0), entry `reduce_alpha`
//   0 partials: array<f32>  read        [count]
//   1 grads:    array<f32>  read_write  flat gradients
//   2 dims:     AlphaDims   uniform

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> grads: array<f32>;
@group(0) @binding(2) var<uniform> dims: AlphaDims;

var<workgroup> shared_sums: array<f32, WG>;

@compute @workgroup_size(WG)
fn reduce_alpha(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < dims.count; i += WG) {
        s += partials[i];
    }
    shared_sums[lid] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if lid < stride {
            shared_sums[lid] += shared_sums[lid + stride];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        grads[dims.alpha_offset] = shared_sums[0];
    }
}
