// fused_reduce.wgsl: sums the per-slot partial gradients and metrics of the fused MLP kernel
// (fused_mlp.wgsl) into the flat gradient buffer and the running training state:
//
//   grads[p] = Σ_s partials[s·stride + p]           (p < n, as vec4: one invocation per vec4)
//   state.loss_sum += Σ_s loss_s, state.correct += Σ_s correct_s, state.count += Σ_s rows_s
//
// Invocation 0 then does what loss.wgsl and optim.wgsl's `tick` do after a training batch: a
// non-finite batch loss marks the run as diverged (once; the optimizer stops updating), and
// otherwise the step counter advances. So a training step is three dispatches: fused, this,
// and optim.wgsl's `update`.
//
// structs.wgsl prepended (ReduceDims, TrainState).
//
// Bindings (group 0), entry `reduce`
//   0 partials: array<vec4<f32>>  read        [slots × stride / 4]
//   1 grads:    array<vec4<f32>>  read_write  flat gradients
//   2 state:    TrainState        read_write
//   3 dims:     ReduceDims        uniform

const WG: u32 = 64u;
const RED_GRADS: u32 = 1u;    // sum the gradients
const RED_METRICS: u32 = 2u;  // add the metrics to the state
const RED_TRAIN: u32 = 4u;    // training batch: divergence check and step tick

@group(0) @binding(0) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> grads: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> state: TrainState;
@group(0) @binding(3) var<uniform> dims: ReduceDims;

fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(WG)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * WG + lid;
    if (dims.flags & RED_GRADS) != 0u && i < dims.n4 {
        var s = vec4<f32>(0.0);
        for (var slot = 0u; slot < dims.slots; slot++) {
            s += partials[slot * dims.stride4 + i];
        }
        grads[i] = s;
    }
    if i == 0u && (dims.flags & RED_METRICS) != 0u {
        var m = vec4<f32>(0.0);
        for (var slot = 0u; slot < dims.slots; slot++) {
            m += partials[slot * dims.stride4 + dims.metrics4];
        }
        state.loss_sum += m.x;
        state.correct += u32(m.y);
        state.count += u32(m.z);
        if (dims.flags & RED_TRAIN) != 0u && state.diverged == 0u {
            if is_finite(m.x) {
                state.step += 1u;
            } else {
                state.diverged = 1u;
                state.bad_step = state.step + 1u;
                state.bad_loss = m.x / f32(dims.batch);
            }
        }
    }
}
