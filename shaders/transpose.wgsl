// transpose.wgsl: dst = srcᵀ for one matrix inside flat buffers (a layer's W, so that dX =
// dZ·Wᵀ can run on the forward matmul cores, which read their right operand row by row).
//
//   dst[dst_offset + c·rows + r] = src[src_offset + r·cols + c],  r < rows, c < cols
//
// Needs structs.wgsl prepended (the host does it). One invocation per element on a 2-D grid of
// 16 × 16 tiles (x over columns, y over rows spilling into z past the grid limit): reads are
// along rows of src, and no workgroup memory is used (CPU adapters pay as much for it as for
// storage; the matrices are small next to the matmul that follows).
//
// Bindings (group 0)
//   0 src:  array<f32>     read        flat parameters
//   1 dst:  array<f32>     read_write  flat transposed weights
//   2 dims: TransposeDims  uniform

const T: u32 = 16u;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> dims: TransposeDims;

@compute @workgroup_size(T, T)
fn transpose(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid: vec3<u32>) {
    let c = wid.x * T + lid.x;
    let r = (wid.y + wid.z * nwg.y) * T + lid.y;
    if r < dims.rows && c < dims.cols {
        dst[dims.dst_offset + c * dims.rows + r] = src[dims.src_offset + r * dims.cols + c];
    }
}
