//! Activation functions: one enum shared by the CPU reference and the WGSL kernels.
//!
//! Every activation has a forward `f(x)` and a derivative `f'(x)`, written here in plain
//! Rust (generic over `f32` and `f64`) and in `shaders/activations.wgsl`. The conventions
//! are the textbook's (Dive into Deep Learning, "Multilayer Perceptrons"):
//!
//! * ReLU'(0) = 0 (the left derivative), pReLU(x) = max(0,x) + α·min(0,x) with pReLU'(0) = α;
//! * sigmoid' = s(1 − s), tanh' = 1 − tanh², Swish' = s(βx) + βx·s(βx)(1 − s(βx)).
//!
//! Both implementations are stable for every finite input (no overflow to NaN/inf), give
//! the mathematical limits at ±inf, and return NaN for NaN.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// An elementwise activation function with its parameter, if it has one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// f(x) = x.
    Identity,
    /// f(x) = max(0, x); f'(0) = 0.
    Relu,
    /// f(x) = max(0, x) + α·min(0, x); α is fixed unless `MlpConfig::learn_prelu`. Default α = 0.25.
    Prelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// f(x) = 1 / (1 + e^−x).
    Sigmoid,
    /// f(x) = tanh(x).
    Tanh,
    /// f(x) = x·sigmoid(βx). β = 1 is SiLU.
    Swish {
        /// Sharpness.
        beta: f32,
    },
    /// f(x) = x for x > 0, slope·x otherwise. Default slope = 0.01.
    LeakyRelu {
        /// Slope for negative inputs.
        slope: f32,
    },
    /// f(x) = x for x > 0, α(e^x − 1) otherwise. Default α = 1.
    Elu {
        /// Saturation value for x → −∞ is −α.
        alpha: f32,
    },
    /// f(x) = x·Φ(x), Φ the standard normal CDF (the erf form).
    Gelu,
    /// f(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (the tanh approximation).
    GeluTanh,
    /// f(x) = ln(1 + e^x).
    Softplus,
}

/// Names accepted on the command line, in the order `plot --activation all` draws them.
pub const ACTIVATION_NAMES: &[&str] = &[
    "identity",
    "relu",
    "prelu",
    "sigmoid",
    "tanh",
    "swish",
    "silu",
    "leaky_relu",
    "elu",
    "gelu",
    "gelu_tanh",
    "softplus",
];

/// √(2/π), the constant of the tanh-approximated GELU.
const GELU_C: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the tanh-approximated GELU.
const GELU_K: f64 = 0.044_715;

impl Activation {
    /// SiLU, i.e. Swish with β = 1.
    pub const SILU: Activation = Activation::Swish { beta: 1.0 };

    /// Every activation with its default parameter, one per name in [`ACTIVATION_NAMES`].
    pub fn all() -> Vec<(&'static str, Activation)> {
        ACTIVATION_NAMES
            .iter()
            .map(|n| (*n, n.parse().expect("built-in names parse")))
            .collect()
    }

    /// The base name (`prelu`, `swish`, ...), without the parameter.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::Prelu { .. } => "prelu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Swish { .. } => "swish",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Elu { .. } => "elu",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_tanh",
            Activation::Softplus => "softplus",
        }
    }

    /// The id the WGSL `ACT` override constant uses (see `shaders/activations.wgsl`).
    pub fn wgsl_id(&self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Relu => 1,
            Activation::Prelu { .. } => 2,
            Activation::Sigmoid => 3,
            Activation::Tanh => 4,
            Activation::Swish { .. } => 5,
            Activation::LeakyRelu { .. } => 6,
            Activation::Elu { .. } => 7,
            Activation::Gelu => 8,
            Activation::GeluTanh => 9,
            Activation::Softplus => 10,
        }
    }

    /// The activation's parameter (α, β or slope), 0 for those without one.
    pub fn param(&self) -> f32 {
        match *self {
            Activation::Prelu { alpha } => alpha,
            Activation::Swish { beta } => beta,
            Activation::LeakyRelu { slope } => slope,
            Activation::Elu { alpha } => alpha,
            _ => 0.0,
        }
    }

    /// True for ReLU-like activations, which get He (Kaiming) initialisation by default.
    pub fn is_relu_like(&self) -> bool {
        !matches!(
            self,
            Activation::Identity | Activation::Sigmoid | Activation::Tanh
        )
    }

    /// f(x) in f64.
    pub fn forward_f64(&self, x: f64) -> f64 {
        self.forward(x)
    }

    /// f'(x) in f64.
    pub fn grad_f64(&self, x: f64) -> f64 {
        self.grad(x)
    }

    /// f(x) in f32.
    pub fn forward_f32(&self, x: f32) -> f32 {
        self.forward(x)
    }

    /// f'(x) in f32.
    pub fn grad_f32(&self, x: f32) -> f32 {
        self.grad(x)
    }

    /// ∂f/∂α for pReLU (= min(0, x)); 0 for every other activation.
    pub fn grad_param<T: Real>(&self, x: T) -> T {
        match self {
            Activation::Prelu { .. } if x < T::ZERO => x,
            _ => T::ZERO,
        }
    }

    /// f(x), generic over the float type.
    pub fn forward<T: Real>(&self, x: T) -> T {
        self.forward_with_param(x, T::from_f64(self.param() as f64))
    }

    /// f(x) with the parameter (α, β or slope) given in the float type: a learned pReLU α.
    pub fn forward_with_param<T: Real>(&self, x: T, p: T) -> T {
        if x.is_nan() {
            return x;
        }
        match self {
            Activation::Identity => x,
            Activation::Relu => {
                if x > T::ZERO {
                    x
                } else {
                    T::ZERO
                }
            }
            Activation::Prelu { .. } | Activation::LeakyRelu { .. } => {
                if x > T::ZERO {
                    x
                } else {
                    p * x
                }
            }
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Swish { .. } => times_vanishing(x, sigmoid(p * x)),
            Activation::Elu { .. } => {
                if x > T::ZERO {
                    x
                } else {
                    p * x.exp_m1()
                }
            }
            Activation::Gelu => times_vanishing(x, normal_cdf(x)),
            Activation::GeluTanh => times_vanishing(x, sigmoid(gelu_tanh_arg(x))),
            Activation::Softplus => x.max(T::ZERO) + (-x.abs()).exp().ln_1p(),
        }
    }

    /// f'(x), generic over the float type.
    pub fn grad<T: Real>(&self, x: T) -> T {
        self.grad_with_param(x, T::from_f64(self.param() as f64))
    }

    /// f'(x) with the parameter given in the float type: a learned pReLU α.
    pub fn grad_with_param<T: Real>(&self, x: T, p: T) -> T {
        if x.is_nan() {
            return x;
        }
        let one = T::ONE;
        match self {
            Activation::Identity => one,
            Activation::Relu => {
                if x > T::ZERO {
                    one
                } else {
                    T::ZERO
                }
            }
            Activation::Prelu { .. } | Activation::LeakyRelu { .. } => {
                if x > T::ZERO {
                    one
                } else {
                    p
                }
            }
            Activation::Sigmoid => {
                let s = sigmoid(x);
                s * (one - s)
            }
            Activation::Tanh => {
                let t = x.tanh();
                one - t * t
            }
            Activation::Swish { .. } => {
                // d/dx x·s(βx) = s + βx·s(1 − s)
                let s = sigmoid(p * x);
                s + times_vanishing(p * x, s * (one - s))
            }
            Activation::Elu { .. } => {
                if x > T::ZERO {
                    one
                } else {
                    p * x.exp()
                }
            }
            Activation::Gelu => {
                // d/dx x·Φ(x) = Φ(x) + x·φ(x)
                let pdf =
                    (-(x * x) * T::from_f64(0.5)).exp() * T::from_f64(0.398_942_280_401_432_7);
                normal_cdf(x) + times_vanishing(x, pdf)
            }
            Activation::GeluTanh => {
                // f = x·s(2u), u = c(x + kx³): f' = s + x·s(1 − s)·2c(1 + 3kx²)
                let s = sigmoid(gelu_tanh_arg(x));
                let du = T::from_f64(2.0 * GELU_C) * (one + T::from_f64(3.0 * GELU_K) * x * x);
                s + times_vanishing(x * du, s * (one - s))
            }
            Activation::Softplus => sigmoid(x),
        }
    }
}

/// 2·√(2/π)(x + 0.044715x³): tanh-GELU written as x·sigmoid(this).
fn gelu_tanh_arg<T: Real>(x: T) -> T {
    T::from_f64(2.0 * GELU_C) * (x + T::from_f64(GELU_K) * x * x * x)
}

/// a·g where g → 0 as a → ±inf: returns 0 when g is exactly 0 (avoids inf·0 = NaN).
fn times_vanishing<T: Real>(a: T, g: T) -> T {
    if g == T::ZERO { T::ZERO } else { a * g }
}

/// The logistic sigmoid without overflow: e^−|x| never exceeds 1.
pub fn sigmoid<T: Real>(x: T) -> T {
    let e = (-x.abs()).exp();
    if x >= T::ZERO {
        T::ONE / (T::ONE + e)
    } else {
        e / (T::ONE + e)
    }
}

/// Φ(x) = ½·erfc(−x/√2), accurate in relative terms in both tails.
fn normal_cdf<T: Real>(x: T) -> T {
    T::from_f64(0.5) * (-x * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erfc()
}

/// The float operations the reference implementations need, for `f32` and `f64`.
///
/// Transcendentals come from `libm` so results do not depend on the platform's math library.
pub trait Real:
    Copy
    + PartialOrd
    + fmt::Debug
    + fmt::Display
    + Default
    + Send
    + Sync
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::iter::Sum
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Conversion from f64 (rounding).
    fn from_f64(v: f64) -> Self;
    /// Conversion to f64 (exact).
    fn to_f64(self) -> f64;
    /// NaN test.
    fn is_nan(self) -> bool;
    /// |x|.
    fn abs(self) -> Self;
    /// max (NaN-ignoring like `f64::max`).
    fn max(self, o: Self) -> Self;
    /// e^x.
    fn exp(self) -> Self;
    /// e^x − 1.
    fn exp_m1(self) -> Self;
    /// ln(1 + x).
    fn ln_1p(self) -> Self;
    /// ln(x).
    fn ln(self) -> Self;
    /// tanh(x).
    fn tanh(self) -> Self;
    /// erfc(x).
    fn erfc(self) -> Self;
    /// √x.
    fn sqrt(self) -> Self;
    /// x^n.
    fn powi(self, n: i32) -> Self;
}

macro_rules! impl_real {
    ($t:ty, $exp:path, $expm1:path, $log1p:path, $log:path, $tanh:path, $erfc:path, $sqrt:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn max(self, o: Self) -> Self {
                <$t>::max(self, o)
            }
            fn exp(self) -> Self {
                $exp(self)
            }
            fn exp_m1(self) -> Self {
                $expm1(self)
            }
            fn ln_1p(self) -> Self {
                $log1p(self)
            }
            fn ln(self) -> Self {
                $log(self)
            }
            fn tanh(self) -> Self {
                $tanh(self)
            }
            fn erfc(self) -> Self {
                $erfc(self)
            }
            fn sqrt(self) -> Self {
                $sqrt(self)
            }
            fn powi(self, n: i32) -> Self {
                <$t>::powi(self, n)
            }
        }
    };
}
impl_real!(
    f64,
    libm::exp,
    libm::expm1,
    libm::log1p,
    libm::log,
    libm::tanh,
    libm::erfc,
    libm::sqrt
);
impl_real!(
    f32,
    libm::expf,
    libm::expm1f,
    libm::log1pf,
    libm::logf,
    libm::tanhf,
    libm::erfcf,
    libm::sqrtf
);

impl fmt::Display for Activation {
    /// `relu`, `prelu:0.25`, `swish:1`: the form [`FromStr`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Prelu { .. }
            | Activation::Swish { .. }
            | Activation::LeakyRelu { .. }
            | Activation::Elu { .. } => write!(f, "{}:{}", self.name(), self.param()),
            _ => f.write_str(self.name()),
        }
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Parses `relu`, `prelu`, `prelu:0.1`, `swish:2`, `silu`, `leaky_relu:0.2`, ... (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let (name, param) = match lower.split_once(':') {
            Some((n, p)) => (n.trim(), Some(p.trim())),
            None => (lower.as_str(), None),
        };
        let bad = |message: String| Error::Activation {
            given: s.to_string(),
            message,
        };
        let value = |default: f32| -> Result<f32> {
            match param {
                None => Ok(default),
                Some(p) => match p.parse::<f32>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err(bad(format!(
                        "parameter {p:?} is not a finite number (write e.g. {name}:{default})"
                    ))),
                },
            }
        };
        let act = match name {
            "identity" | "linear" | "none" => Activation::Identity,
            "relu" => Activation::Relu,
            "prelu" => Activation::Prelu {
                alpha: value(0.25)?,
            },
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "swish" => Activation::Swish { beta: value(1.0)? },
            "silu" => Activation::SILU,
            "leaky_relu" | "leakyrelu" => Activation::LeakyRelu {
                slope: value(0.01)?,
            },
            "elu" => Activation::Elu { alpha: value(1.0)? },
            "gelu" => Activation::Gelu,
            "gelu_tanh" => Activation::GeluTanh,
            "softplus" => Activation::Softplus,
            _ => {
                return Err(bad(format!(
                    "choose one of {} (parameters as prelu:0.1, swish:2)",
                    ACTIVATION_NAMES.join(", ")
                )));
            }
        };
        let takes_param = matches!(
            act,
            Activation::Prelu { .. }
                | Activation::Swish { .. }
                | Activation::LeakyRelu { .. }
                | Activation::Elu { .. }
        ) && name != "silu";
        if param.is_some() && !takes_param {
            return Err(bad(format!("{name} takes no parameter")));
        }
        Ok(act)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display() {
        for (name, act) in Activation::all() {
            let back: Activation = act.to_string().parse().unwrap();
            assert_eq!(back, act, "{name}");
        }
        assert_eq!(
            "prelu:0.1".parse::<Activation>().unwrap(),
            Activation::Prelu { alpha: 0.1 }
        );
        assert_eq!("silu".parse::<Activation>().unwrap(), Activation::SILU);
        assert!("relu:2".parse::<Activation>().is_err());
        assert!("prelu:abc".parse::<Activation>().is_err());
        assert!("prelu:nan".parse::<Activation>().is_err());
        let err = "softmax".parse::<Activation>().unwrap_err().to_string();
        assert!(err.contains("choose one of"), "{err}");
    }

    #[test]
    fn wgsl_ids_are_distinct() {
        let mut ids: Vec<u32> = Activation::all()
            .iter()
            .filter(|(n, _)| *n != "silu")
            .map(|(_, a)| a.wgsl_id())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ACTIVATION_NAMES.len() - 1);
    }
}
