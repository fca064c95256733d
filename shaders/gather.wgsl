// gather.wgsl: builds a batch on the GPU from the resident dataset and a list of sample indices.
//
//   xb[r, :] = features[indices[r], :],  yb[r] = labels[indices[r]]
//
// The dataset may be split into chunks of rows (a storage binding holds at most
// max_storage_buffer_binding_size bytes: 128 MiB on lavapipe, less than Fashion-MNIST's
// 188 MB of f32); one dispatch per chunk copies the rows whose index falls in
// [row_start, row_end). One invocation per element of the batch, on a 2-D grid.
//
// Needs structs.wgsl prepended (the host does it).
//
// Bindings (group 0)
//   0 features: array<f32>  read        rows row_start..row_end of the dataset, row-major
//   1 labels:   array<u32>  read        every label of the dataset
//   2 indices:  array<u32>  read        [batch] sample indices
//   3 xb:       array<f32>  read_write  [batch × n_features]
//   4 yb:       array<u32>  read_write  [batch]
//   5 dims:     GatherDims  uniform

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> features: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read_write> xb: array<f32>;
@group(0) @binding(4) var<storage, read_write> yb: array<u32>;
@group(0) @binding(5) var<uniform> dims: GatherDims;

@compute @workgroup_size(WG)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    let d = dims.n_features;
    if i >= dims.batch * d {
        return;
    }
    let row = i / d;
    let col = i - row * d;
    let src = indices[row];
    if src < dims.row_start || src >= dims.row_end {
        return;
    }
    xb[i] = features[(src - dims.row_start) * d + col];
    if col == 0u {
        yb[row] = labels[src];
    }
}
