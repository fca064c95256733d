// clip.wgsl: gradient clipping by global norm (PyTorch's clip_grad_norm_), in two dispatches
// before the optimizer update:
//
//   partial: workgroup w sums grads[i]² over its block of dims.per_group values → partials[w]
//   finish:  one workgroup sums the partials; norm = √Σ; coef = clip / (norm + 1e-6);
//            state.grad_scale = coef if coef < 1 else 1 (NaN or inf norms give 1 or 0, as in
//            PyTorch; a NaN gradient is the loss kernel's divergence to catch)
//
// optim.wgsl then multiplies every gradient by state.grad_scale (when opt.clip_norm > 0).
// Each invocation's loops run at most per_group / 256 and ceil(groups / 256) times, far
// below llvmpipe's 65,535 (the host sizes the blocks).
//
// Needs structs.wgsl prepended (the host does it).
//
// Bindings (group 0)
//   0 grads:    array<f32>  read        [n]
//   1 partials: array<f32>  read_write  [groups]
//   2 state:    TrainState  read_write  (grad_scale written by finish)
//   3 opt:      OptParams   uniform     (clip_norm)
//   4 dims:     ClipDims    uniform

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> grads: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: TrainState;
@group(0) @binding(3) var<uniform> opt: OptParams;
@group(0) @binding(4) var<uniform> dims: ClipDims;

var<workgroup> red: array<f32, WG>;

fn reduce(t: u32) {
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if t < stride {
            red[t] += red[t + stride];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(WG)
fn partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) t: u32) {
    let w = wid.y * nwg.x + wid.x;
    let begin = w * dims.per_group;
    let end = min(begin + dims.per_group, dims.n);
    var s = 0.0;
    for (var i = begin + t; i < end; i += WG) {
        let g = grads[i];
        s += g * g;
    }
    red[t] = s;
    reduce(t);
    if t == 0u && w < dims.groups {
        partials[w] = red[0];
    }
}

@compute @workgroup_size(WG)
fn finish(@builtin(local_invocation_index) t: u32) {
    var s = 0.0;
    for (var i = t; i < dims.groups; i += WG) {
        s += partials[i];
    }
    red[t] = s;
    reduce(t);
    if t == 0u {
        let coef = opt.clip_norm / (sqrt(red[0]) + 1e-6);
        state.grad_scale = select(1.0, coef, coef < 1.0);
    }
}
