// fused_pack.wgsl: copies the flat parameters into the r32float texture the fused MLP kernel
// (fused_mlp.wgsl) reads its weights from, TEX_WIDTH values per texture row:
//
//   wtex[i % TEX_WIDTH, i / TEX_WIDTH] = params[i],  i < n
//
// It runs after every change of the parameters (the optimizer's update, an upload). The
// kernel reads weights as texels because a texel fetch compiles to straight-line code on
// lavapipe, where a storage load of a lane-dependent address becomes a loop over the lanes.
//
// structs.wgsl prepended (PackDims).
//
// Bindings (group 0), entry `pack`
//   0 params: array<f32>                          read   flat parameters
//   1 wtex:   texture_storage_2d<r32float, write>
//   2 dims:   PackDims                            uniform

const WG: u32 = 64u;
const TEX_WIDTH: u32 = 4096u;

@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var wtex: texture_storage_2d<r32float, write>;
@group(0) @binding(2) var<uniform> dims: PackDims;

@compute @workgroup_size(WG)
fn pack(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if i < dims.n {
        textureStore(wtex, vec2<u32>(i % TEX_WIDTH, i / TEX_WIDTH), vec4<f32>(params[i], 0.0, 0.0, 0.0));
    }
}
