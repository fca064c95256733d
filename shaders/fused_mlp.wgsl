// fused_mlp.wgsl: the fixed part of the fully fused MLP kernel (forward, loss, backward and
// per-slot parameter gradients of a whole narrow network in one dispatch).
//
// SNIPPET, with structs.wgsl prepended (FusedDims, FusedLayers) and activations.wgsl prepended
// for the activation helpers (the host does both), and followed by the generated part (src/gpu/fused/codegen.rs): the shape constants, the private
// row store and the entry point `main`, whose loops are unrolled for one model shape. Read the
// design in the module doc of src/gpu/fused/mod.rs.
//
// One "row group" of S lanes (one subgroup, or one workgroup exchanging through workgroup
// memory) owns a chunk of rows of the batch. Every vector of a row (inputs,
// pre-activations, gradients) is spread over the lanes: element j lives in lane j % S, slot
// j / S. A layer's weights stay in registers while the chunk's rows stream through it, and
// the lanes share a row's values by broadcast; the chunk's pre-activations wait in the `rows`
// store for the backward pass, where each is overwritten by its gradient.
//
// Gradients of the parameters are summed over the chunk's rows in registers and written to the
// slot's own row of `partials`, in the layout of the flat parameters; fused_reduce.wgsl sums
// the slots. No float atomics.
//
// Bindings (group 0)
//   0 wtex:     texture_2d<f32>  r32float, the flat parameters row by row (TEX_WIDTH per row)
//   1 xin:      array<f32>   read        [batch × input]
//   2 labels:   array<u32>   read        [batch] class labels (classification)
//   3 targets:  array<f32>   read        [batch × output] float targets (FLAG_TARGETS)
//   4 outputs:  array<f32>   read_write  [batch × output] network outputs (FLAG_OUTPUTS)
//   5 partials: array<f32>   read_write  [slots × stride]: per-slot gradients, metrics, scratch
//   6 dims:     FusedDims    uniform
//   7 net:      FusedLayers  uniform
//   8 rows:     array<vec4>  read_write  [batch × S × ROW4]: per row and lane, every layer's
//                                        pre-activations (then their gradients)

// Bits of FusedDims.flags.
const FLAG_GRADS: u32 = 1u;    // backward pass and parameter gradients
const FLAG_LOSS: u32 = 2u;     // loss and correct count into the slot's metrics
const FLAG_OUTPUTS: u32 = 4u;  // write the outputs
const FLAG_TARGETS: u32 = 8u;  // MSE against `targets` instead of one-hot labels

const LOSS_CE: u32 = 0u;

// Row width of the parameter texture (fused_pack.wgsl writes it from the flat parameters).
const TEX_WIDTH: u32 = 4096u;

@group(0) @binding(0) var wtex: texture_2d<f32>;
@group(0) @binding(1) var<storage, read> xin: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> targets: array<f32>;
@group(0) @binding(4) var<storage, read_write> outputs: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;
@group(0) @binding(6) var<uniform> dims: FusedDims;
@group(0) @binding(7) var<uniform> net: FusedLayers;
@group(0) @binding(8) var<storage, read_write> rows: array<vec4<f32>>;

// params[i] where `ok`, else 0, from the parameter texture. Branch-free, and a texture
// fetch rather than a storage load: lavapipe compiles each storage access of a lane-dependent
// address into a loop over the lanes, and the thousands of them in an unrolled layer made the
// compile time grow to minutes (a 64-wide layer's loads: 33 s from storage, 4.7 s from a
// texture, measured), while a texel fetch is straight-line code.
fn fused_param(i: u32, ok: bool) -> f32 {
    let j = select(0u, i, ok);
    return select(0.0, textureLoad(wtex, vec2<u32>(j % TEX_WIDTH, j / TEX_WIDTH), 0).x, ok);
}

// xin[i] where `ok`, else 0 (branch-free).
fn fused_input(i: u32, ok: bool) -> f32 {
    return select(0.0, xin[select(0u, i, ok)], ok);
}

// Stores the slot's gradient v at `at`; masked lanes write their own scratch float `trash`
// past the slot's metrics instead of branching.
fn fused_store(at: u32, trash: u32, v: f32, ok: bool) {
    partials[select(trash, at, ok)] = v;
}

// The activation parameter of layer l: its learned α or the fixed one.
fn fused_act_param(l: u32) -> f32 {
    let layer = net.l[l];
    if layer.learned != 0u {
        return fused_param(layer.alpha_offset, true);
    }
    return layer.act_p;
}

// f(x) for the activation `id` chosen at run time (per layer), with the same formulas as
// act_raw4 in activations.wgsl, whose helpers it calls. NaN in gives NaN out.
fn fused_act(x: vec4<f32>, id: u32, p: f32) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    var y = x;
    switch id {
        case ACT_RELU: { y = select(zero, x, x > zero); }
        case ACT_PRELU, ACT_LEAKY_RELU: { y = select(p * x, x, x > zero); }
        case ACT_SIGMOID: { y = act_sigmoid4(x); }
        case ACT_TANH: { y = act_tanh4(x); }
        case ACT_SWISH: { y = act_times_vanishing4(x, act_sigmoid4(p * x)); }
        case ACT_ELU: { y = select(p * act_expm1_4(x), x, x > zero); }
        case ACT_GELU: { y = act_times_vanishing4(x, act_normal_cdf4(x)); }
        case ACT_GELU_TANH: { y = act_times_vanishing4(x, act_sigmoid4(act_gelu_tanh_arg4(x))); }
        case ACT_SOFTPLUS: { y = max(x, zero) + act_log1p4(exp(-abs(x))); }
        default: {}
    }
    return select(y, x, act_is_nan4(x));
}

// f'(x) for the activation `id`, as act_grad_raw4 in activations.wgsl. NaN in gives NaN out.
fn fused_act_grad(x: vec4<f32>, id: u32, p: f32) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    let one = vec4<f32>(1.0);
    var g = one;
    switch id {
        case ACT_RELU: { g = select(zero, one, x > zero); }
        case ACT_PRELU, ACT_LEAKY_RELU: { g = select(vec4<f32>(p), one, x > zero); }
        case ACT_SIGMOID: {
            let s = act_sigmoid4(x);
            g = s * (1.0 - s);
        }
        case ACT_TANH: {
            let t = act_tanh4(x);
            g = 1.0 - t * t;
        }
        case ACT_SWISH: {
            let s = act_sigmoid4(p * x);
            g = s + act_times_vanishing4(p * x, s * (1.0 - s));
        }
        case ACT_ELU: { g = select(p * exp(x), one, x > zero); }
        case ACT_GELU: {
            let pdf = exp(-0.5 * x * x) * 0.3989422804014327;
            g = act_normal_cdf4(x) + act_times_vanishing4(x, pdf);
        }
        case ACT_GELU_TANH: {
            let s = act_sigmoid4(act_gelu_tanh_arg4(x));
            let du = 1.5957691216057308 * (1.0 + 0.134145 * x * x);
            g = s + act_times_vanishing4(x * du, s * (1.0 - s));
        }
        case ACT_SOFTPLUS: { g = act_sigmoid4(x); }
        default: {}
    }
    return select(g, x, act_is_nan4(x));
}

// ∂f/∂α of a learned pReLU slope: min(0, x) (0 for every other activation).
fn fused_act_dparam(x: vec4<f32>, id: u32) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    if id == ACT_PRELU {
        return select(zero, x, x < zero);
    }
    return zero;
}
