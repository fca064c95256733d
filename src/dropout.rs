//! Dropout's masks, drawn by the same counter-based hash as `shaders/dropout.wgsl`, so the
//! CPU reference and the GPU drop the same units (see that file for the definition).

/// lowbias32: a 32-bit integer mixer (good avalanche, two multiplies).
pub fn mix32(v: u32) -> u32 {
    let mut h = v;
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^= h >> 16;
    h
}

/// The 32-bit seed of the masks for a model seed.
pub fn mask_seed(seed: u64) -> u32 {
    (seed as u32) ^ ((seed >> 32) as u32)
}

/// Whether element `i` of hidden layer `layer`'s batch is kept at optimizer step `step`.
pub fn keep(seed: u32, step: u32, layer: u32, i: u32, p: f32) -> bool {
    let u = mix32(i ^ mix32(layer ^ mix32(step ^ mix32(seed))));
    ((u >> 8) as f32) * (1.0 / 16_777_216.0) >= p
}

/// Inverted dropout's scale 1 / (1 − p), computed once in f32 (the GPU gets this value).
pub fn scale(p: f32) -> f32 {
    1.0 / (1.0 - p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_drop_about_p_and_differ_by_step_layer_and_seed() {
        let n = 100_000u32;
        for p in [0.1f32, 0.5, 0.9] {
            let kept = (0..n).filter(|&i| keep(7, 3, 1, i, p)).count() as f64 / n as f64;
            // Binomial: std √(p(1−p)/n) ≤ 0.0016; 5σ = 0.008.
            assert!(
                (kept - (1.0 - f64::from(p))).abs() < 0.008,
                "p {p}: kept {kept}"
            );
        }
        let mask = |seed, step, layer| -> Vec<bool> {
            (0..256).map(|i| keep(seed, step, layer, i, 0.5)).collect()
        };
        let m = mask(1, 2, 0);
        assert_ne!(m, mask(1, 3, 0));
        assert_ne!(m, mask(1, 2, 1));
        assert_ne!(m, mask(2, 2, 0));
        assert_eq!(m, mask(1, 2, 0));
        assert!((0..1000).all(|i| keep(5, 5, 5, i, 0.0)));
        assert_eq!(scale(0.5), 2.0);
    }
}
