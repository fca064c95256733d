// dropout.wgsl: inverted dropout in place, x[i] ← x[i] · scale if kept else 0, with
// scale = 1 / (1 − p) computed on the host. Training only: after a hidden layer's forward
// (on Y) and after the backward that makes that layer's dZ (the mask commutes with act').
//
// The mask is drawn by a counter-based hash, so the GPU and the CPU reference
// (src/dropout.rs) draw the same one and a resumed run draws the same masks:
//   u = h(i ^ h(layer ^ h(step ^ h(seed))))   with h = lowbias32 (an integer mixer)
//   kept  ⇔  (u >> 8) · 2⁻²⁴ ≥ p
// step is the optimizer's step counter before this step's update (state.step), so the
// forward and backward of one step see the same mask and every step a new one.
//
// Needs structs.wgsl prepended (the host does it).
//
// Bindings (group 0)
//   0 x:     array<f32>   read_write  [n] (a batch of one layer's Y or dZ)
//   1 state: TrainState   read        (step)
//   2 dims:  DropoutDims  uniform

const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> state: TrainState;
@group(0) @binding(2) var<uniform> dims: DropoutDims;

fn mix32(v: u32) -> u32 {
    var h = v;
    h ^= h >> 16u;
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

@compute @workgroup_size(WG)
fn dropout(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if i >= dims.n {
        return;
    }
    let u = mix32(i ^ mix32(dims.layer ^ mix32(state.step ^ mix32(dims.seed))));
    let keep = f32(u >> 8u) * (1.0 / 16777216.0) >= dims.p;
    x[i] = select(0.0, x[i] * dims.scale, keep);
}
