// activations.wgsl: act(z) and act'(z) for every activation, on vec4<f32>.
//
// SNIPPET: the host prepends this file to every kernel that applies an activation
// (elementwise.wgsl, affine_act.wgsl, affine_backward.wgsl). It is also valid WGSL on its own.
//
// The activation is chosen by the pipeline-overridable constant ACT (ids match
// `Activation::wgsl_id` in src/activation.rs); its parameter (pReLU/ELU alpha, Swish beta,
// LeakyReLU slope) is passed as `p`, normally the override constant ACT_P.
//
// Conventions (the same as the CPU reference): ReLU'(0) = 0; pReLU'(0) = alpha; stable for every
// finite input (nothing overflows to inf or NaN); the mathematical limits at +-inf; NaN in, NaN out.

override ACT: u32 = 1u;
override ACT_P: f32 = 0.0;

const ACT_IDENTITY: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_PRELU: u32 = 2u;
const ACT_SIGMOID: u32 = 3u;
const ACT_TANH: u32 = 4u;
const ACT_SWISH: u32 = 5u;
const ACT_LEAKY_RELU: u32 = 6u;
const ACT_ELU: u32 = 7u;
const ACT_GELU: u32 = 8u;
const ACT_GELU_TANH: u32 = 9u;
const ACT_SOFTPLUS: u32 = 10u;

// NaN test on the bits: compilers may assume floats are never NaN, integers they may not.
fn act_is_nan4(x: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(x) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

// 1 / (1 + e^-x) without overflow: e^-|x| is at most 1.
fn act_sigmoid4(x: vec4<f32>) -> vec4<f32> {
    let e = exp(-abs(x));
    let r = 1.0 / (1.0 + e);
    return select(e * r, r, x >= vec4<f32>(0.0));
}

// a * g where g -> 0 as |a| -> inf: 0 when g is exactly 0, so inf * 0 never makes NaN.
fn act_times_vanishing4(a: vec4<f32>, g: vec4<f32>) -> vec4<f32> {
    return select(a * g, vec4<f32>(0.0), g == vec4<f32>(0.0));
}

// tanh from e^-2|x| (no overflow), with a Taylor series near 0 where 1 - e cancels.
fn act_tanh4(x: vec4<f32>) -> vec4<f32> {
    let a = abs(x);
    let e = exp(-2.0 * a);
    let far = (1.0 - e) / (1.0 + e);
    let a2 = a * a;
    let near = a * (1.0 - a2 * (1.0 / 3.0 - a2 * (2.0 / 15.0 - a2 * (17.0 / 315.0))));
    let t = select(far, near, a < vec4<f32>(0.1));
    return select(-t, t, x >= vec4<f32>(0.0));
}

// e^x - 1, accurate near 0 (Kahan's trick: the rounding of u = e^x cancels in (u - 1) / log(u)).
fn act_expm1_4(x: vec4<f32>) -> vec4<f32> {
    let u = exp(x);
    let um1 = u - 1.0;
    let kahan = um1 * x / log(u);
    let r = select(kahan, x, u == vec4<f32>(1.0));
    return select(r, vec4<f32>(-1.0), um1 == vec4<f32>(-1.0) | u == vec4<f32>(0.0));
}

// ln(1 + x) for x >= 0, accurate near 0 (Goldberg's trick).
fn act_log1p4(x: vec4<f32>) -> vec4<f32> {
    let u = 1.0 + x;
    return select(log(u) * x / (u - 1.0), x, u == vec4<f32>(1.0));
}

// Standard normal CDF, Phi(x) = erfc(-x / sqrt 2) / 2, with a rational-Chebyshev erfc whose
// relative error is below 1.2e-7 everywhere (Numerical Recipes' erfcc), so both tails are exact
// in relative terms.
fn act_normal_cdf4(x: vec4<f32>) -> vec4<f32> {
    let z = -x * 0.70710678118654752;
    let az = abs(z);
    let t = 1.0 / (1.0 + 0.5 * az);
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let r = t * exp(-az * az + poly);
    let erfc = select(2.0 - r, r, z >= vec4<f32>(0.0));
    return 0.5 * erfc;
}

// 2 sqrt(2/pi) (x + 0.044715 x^3): tanh-GELU is x * sigmoid(this).
fn act_gelu_tanh_arg4(x: vec4<f32>) -> vec4<f32> {
    return 1.5957691216057308 * (x + 0.044715 * x * x * x);
}

fn act_raw4(x: vec4<f32>, p: f32) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    switch ACT {
        case ACT_RELU: { return select(zero, x, x > zero); }
        case ACT_PRELU, ACT_LEAKY_RELU: { return select(p * x, x, x > zero); }
        case ACT_SIGMOID: { return act_sigmoid4(x); }
        case ACT_TANH: { return act_tanh4(x); }
        case ACT_SWISH: { return act_times_vanishing4(x, act_sigmoid4(p * x)); }
        case ACT_ELU: { return select(p * act_expm1_4(x), x, x > zero); }
        case ACT_GELU: { return act_times_vanishing4(x, act_normal_cdf4(x)); }
        case ACT_GELU_TANH: { return act_times_vanishing4(x, act_sigmoid4(act_gelu_tanh_arg4(x))); }
        case ACT_SOFTPLUS: { return max(x, zero) + act_log1p4(exp(-abs(x))); }
        default: { return x; }
    }
}

fn act_grad_raw4(x: vec4<f32>, p: f32) -> vec4<f32> {
    let zero = vec4<f32>(0.0);
    let one = vec4<f32>(1.0);
    switch ACT {
        case ACT_RELU: { return select(zero, one, x > zero); }
        case ACT_PRELU, ACT_LEAKY_RELU: { return select(vec4<f32>(p), one, x > zero); }
        case ACT_SIGMOID: {
            let s = act_sigmoid4(x);
            return s * (1.0 - s);
        }
        case ACT_TANH: {
            let t = act_tanh4(x);
            return 1.0 - t * t;
        }
        case ACT_SWISH: {
            // d/dx x s(bx) = s + bx s (1 - s)
            let s = act_sigmoid4(p * x);
            return s + act_times_vanishing4(p * x, s * (1.0 - s));
        }
        case ACT_ELU: { return select(p * exp(x), one, x > zero); }
        case ACT_GELU: {
            // d/dx x Phi(x) = Phi(x) + x phi(x)
            let pdf = exp(-0.5 * x * x) * 0.3989422804014327;
            return act_normal_cdf4(x) + act_times_vanishing4(x, pdf);
        }
        case ACT_GELU_TANH: {
            // f = x s(2u), u = c (x + k x^3): f' = s + x s (1 - s) 2c (1 + 3 k x^2)
            let s = act_sigmoid4(act_gelu_tanh_arg4(x));
            let du = 1.5957691216057308 * (1.0 + 0.134145 * x * x);
            return s + act_times_vanishing4(x * du, s * (1.0 - s));
        }
        case ACT_SOFTPLUS: { return act_sigmoid4(x); }
        default: { return one; }
    }
}

// f(x); NaN in gives NaN out.
fn act4(x: vec4<f32>, p: f32) -> vec4<f32> {
    return select(act_raw4(x, p), x, act_is_nan4(x));
}

// f'(x); NaN in gives NaN out.
fn act_grad4(x: vec4<f32>, p: f32) -> vec4<f32> {
    return select(act_grad_raw4(x, p), x, act_is_nan4(x));
}
