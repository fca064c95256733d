//! A small, portable, seeded random number generator.
//!
//! Same seed, same numbers on every platform: the generator is xoshiro256** seeded through
//! SplitMix64, and the transcendental functions used for normal samples come from `libm`
//! (not the platform's math library), so initial weights and shuffles are bit-identical
//! everywhere.

/// xoshiro256** pseudo-random generator.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose whole sequence is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut st = seed;
        Rng {
            s: [
                splitmix64(&mut st),
                splitmix64(&mut st),
                splitmix64(&mut st),
                splitmix64(&mut st),
            ],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform_range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal sample (Box–Muller with `libm`, so identical on every platform).
    pub fn normal(&mut self) -> f64 {
        // 1 - uniform() is in (0, 1], so the log is finite.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * std::f64::consts::PI * u2)
    }

    /// Uniform integer in [0, n) without modulo bias. `n` must be > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        // Lemire's nearly-divisionless method.
        let mut m = (self.next_u64() as u128) * (n as u128);
        let mut lo = m as u64;
        if lo < n {
            let threshold = n.wrapping_neg() % n;
            while lo < threshold {
                m = (self.next_u64() as u128) * (n as u128);
                lo = m as u64;
            }
        }
        (m >> 64) as u64
    }

    /// A uniformly random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<u32> {
        let mut p: Vec<u32> = (0..n as u32).collect();
        self.shuffle(&mut p);
        p
    }

    /// Shuffles a slice in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_known_first_value() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::new(43).next_u64(), xs[0]);
    }

    /// Known answers for seeds 0 and 42: xoshiro256** (Blackman & Vigna) seeded through
    /// SplitMix64, the 53-bit uniform, Box–Muller, Lemire's bounded integer and Fisher–Yates.
    /// The constants were computed independently of this file by `scripts/rng_reference.py`,
    /// a Python implementation written from the algorithms' published definitions (its
    /// SplitMix64 matches the published first output for seed 0, 0xE220A8397B1DCDAF, and
    /// mpmath confirms that every log, cos and sqrt in the normal samples below is correctly
    /// rounded, so they do not depend on a platform's math library). Floats are compared bit
    /// for bit: checkpoints and pinned tests depend on this exact sequence.
    #[test]
    fn known_answers_from_an_independent_implementation() {
        struct Known {
            seed: u64,
            next_u64: [u64; 4],
            uniform: [u64; 3],
            uniform_range: [u64; 3], // uniform_range(-1.0, 3.0)
            normal: [u64; 3],
            below: [u64; 4], // below(10), below(1_000_003), below(2^63 + 1) twice
            permutation: [u32; 10],
        }
        let known = [
            Known {
                seed: 0,
                next_u64: [
                    0x99EC_5F36_CB75_F2B4,
                    0xBF6E_1F78_4956_452A,
                    0x1A5F_849D_4933_E6E0,
                    0x6AA5_94F1_262D_2D2C,
                ],
                uniform: [
                    0x3FE3_3D8B_E6D9_6EBE,
                    0x3FE7_EDC3_EF09_2AC8,
                    0x3FBA_5F84_9D49_33E0,
                ],
                uniform_range: [
                    0x3FF6_7B17_CDB2_DD7C,
                    0x3FFF_DB87_DE12_5590,
                    0xBFE2_D03D_B15B_6610,
                ],
                normal: [
                    0xBF93_6B8E_F9B1_343E,
                    0xBFD9_D691_0322_7BC6,
                    0x3FFA_0073_583E_17FF,
                ],
                below: [
                    6,
                    747_776,
                    9_221_051_770_647_995_749,
                    620_104_743_558_096_346,
                ],
                permutation: [7, 8, 3, 1, 5, 4, 2, 0, 9, 6],
            },
            Known {
                seed: 42,
                next_u64: [
                    0x1578_0B2E_0C2E_C716,
                    0x6104_D986_6D11_3A7E,
                    0xAE17_5332_39E4_99A1,
                    0xECB8_AD47_03B3_60A1,
                ],
                uniform: [
                    0x3FB5_780B_2E0C_2EC0,
                    0x3FD8_4136_619B_444E,
                    0x3FE5_C2EA_6647_3C93,
                ],
                uniform_range: [
                    0xBFE5_43FA_68F9_E8A0,
                    0x3FE0_826C_C336_889C,
                    0x3FFB_85D4_CC8E_7926,
                ],
                normal: [
                    0xBFD3_68A9_7C38_507C,
                    0x3FF5_8040_C37F_1762,
                    0x3FD8_8AA3_5330_A92C,
                ],
                below: [
                    0,
                    378_981,
                    9_147_776_489_032_658_738,
                    7_099_593_415_032_875_292,
                ],
                permutation: [9, 1, 4, 2, 8, 7, 6, 5, 3, 0],
            },
        ];
        for k in &known {
            let seed = k.seed;
            let mut r = Rng::new(seed);
            assert_eq!(k.next_u64.map(|_| r.next_u64()), k.next_u64, "seed {seed}");
            let mut r = Rng::new(seed);
            assert_eq!(
                k.uniform.map(|_| r.uniform().to_bits()),
                k.uniform,
                "seed {seed}"
            );
            let mut r = Rng::new(seed);
            let got = k
                .uniform_range
                .map(|_| r.uniform_range(-1.0, 3.0).to_bits());
            assert_eq!(got, k.uniform_range, "seed {seed}");
            let mut r = Rng::new(seed);
            assert_eq!(
                k.normal.map(|_| r.normal().to_bits()),
                k.normal,
                "seed {seed}"
            );
            let mut r = Rng::new(seed);
            let big = (1u64 << 63) + 1; // about half of all draws are rejected
            let got = [r.below(10), r.below(1_000_003), r.below(big), r.below(big)];
            assert_eq!(got, k.below, "seed {seed}");
            let mut r = Rng::new(seed);
            assert_eq!(r.permutation(10), k.permutation, "seed {seed}");
        }
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut r = Rng::new(7);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut r = Rng::new(1);
        let mut p = r.permutation(1000);
        assert_ne!(p, (0..1000).collect::<Vec<u32>>());
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<u32>>());
        assert!(r.below(1) == 0);
    }
}
