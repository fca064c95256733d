// optim.wgsl: optimizer updates over one flat buffer holding every parameter of the model,
// so one dispatch updates the whole network. PyTorch's definitions:
//
//   sgd:       g ← g + wd·p;  p ← p − lr·g
//   momentum:  g ← g + wd·p;  m ← μ·m + g;  p ← p − lr·m
//   adam:      g ← g + wd·p;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
//              p ← p − lr · (m / (1−β1^t)) / (√(v / (1−β2^t)) + ε)
//   adamw:     p ← p·(1 − lr·wd), then adam without the wd·p term (decoupled weight decay)
//
// With opt.clip_norm > 0 every gradient is first multiplied by state.grad_scale, which
// clip.wgsl computed from the global norm this step (PyTorch: clip_grad_norm_ before step).
//
// `tick` (one invocation) advances the step counter t before `update` runs, after the backward
// (dropout masks are keyed by the step); both do nothing once the loss kernel has marked the
// run as diverged, so the last good parameters stay.
//
// Needs structs.wgsl prepended (the host does it).
//
// Bindings (group 0)
//   0 params: array<f32>  read_write
//   1 grads:  array<f32>  read
//   2 m:      array<f32>  read_write  (momentum buffer / Adam's first moment)
//   3 v:      array<f32>  read_write  (Adam's second moment)
//   4 state:  TrainState  read_write
//   5 opt:    OptParams   uniform

const WG: u32 = 256u;
const OPT_SGD: u32 = 0u;
const OPT_MOMENTUM: u32 = 1u;
const OPT_ADAM: u32 = 2u;
const OPT_ADAMW: u32 = 3u;

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: TrainState;
@group(0) @binding(5) var<uniform> opt: OptParams;

@compute @workgroup_size(1)
fn tick() {
    if state.diverged == 0u {
        state.step += 1u;
    }
}

@compute @workgroup_size(WG)
fn update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid.x;
    if i >= opt.n || state.diverged != 0u {
        return;
    }
    var p = params[i];
    var g = grads[i];
    if opt.clip_norm > 0.0 {
        g *= state.grad_scale;
    }
    switch opt.kind {
        case OPT_SGD: {
            g += opt.weight_decay * p;
            p -= opt.lr * g;
        }
        case OPT_MOMENTUM: {
            g += opt.weight_decay * p;
            let mi = opt.momentum * m[i] + g;
            m[i] = mi;
            p -= opt.lr * mi;
        }
        default: {
            if opt.kind == OPT_ADAMW {
                p *= 1.0 - opt.lr * opt.weight_decay;
            } else {
                g += opt.weight_decay * p;
            }
            let t = f32(state.step);
            let mi = opt.beta1 * m[i] + (1.0 - opt.beta1) * g;
            let vi = opt.beta2 * v[i] + (1.0 - opt.beta2) * g * g;
            m[i] = mi;
            v[i] = vi;
            let m_hat = mi / (1.0 - pow(opt.beta1, t));
            let v_hat = vi / (1.0 - pow(opt.beta2, t));
            p -= opt.lr * m_hat / (sqrt(v_hat) + opt.eps);
        }
    }
    params[i] = p;
}
