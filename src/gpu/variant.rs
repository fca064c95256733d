//! The matmul cores by name, with what each needs of a shape and the tile it covers: plain
//! data, with no dependency on a device, so the autotune cache, the kernels and the dispatch
//! builders ([`crate::gpu::matmul`]) can all name them.

use crate::gpu::kernels::Kernel;

/// A matmul core. Which one a layer gets is decided per adapter and shape class by
/// [`crate::gpu::tune`] (`WGMLP_MATMUL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulVariant {
    /// Scalar loads, 4×4 outputs per invocation, 32×32 per workgroup: every shape.
    Scalar,
    /// vec4 loads along the columns, 8×8 outputs per invocation, 64×64 per workgroup.
    Vec4,
    /// vec4 loads along the columns, 16×32 outputs per invocation, 32×256 per workgroup
    /// (for CPU adapters; too many registers for GPUs).
    Wide,
    /// Tiles of both operands in workgroup memory (8 KiB), 4×4 outputs per invocation, 64×64
    /// per workgroup of 256: the GPU-shaped core. Every shape.
    Tiled,
    /// X shared across each 8-lane subgroup by `subgroupBroadcast` in the forward and in dW/db
    /// (CPU adapters with SIMD-8 subgroups). fan_in a multiple of 4 too.
    Bcast,
}

/// `WG_X`, `WG_Y`, `ROWS`, `COLS` (vec4 columns) of `shaders/affine_wide.wgsl`, which
/// `scripts/gen_wide_kernels.py` writes; a test checks the file against these.
pub const WIDE_BLOCK: (usize, usize, usize, usize) = (8, 2, 16, 8);

impl MatmulVariant {
    /// Whether the vec4 cores can run a layer: fan_out and both parameter offsets are
    /// multiples of 4 floats.
    pub fn vec4_fits(fan_out: usize, w_offset: usize, b_offset: usize) -> bool {
        fan_out % 4 == 0 && w_offset % 4 == 0 && b_offset % 4 == 0
    }

    /// Every core.
    pub const ALL: [MatmulVariant; 5] = [
        MatmulVariant::Scalar,
        MatmulVariant::Vec4,
        MatmulVariant::Wide,
        MatmulVariant::Tiled,
        MatmulVariant::Bcast,
    ];

    /// Whether this core can run a `fan_in → fan_out` product with parameters at `w_offset` /
    /// `b_offset` on an adapter with (`subgroups_of_8`) or without subgroups of exactly 8
    /// invocations.
    pub fn runs(
        self,
        subgroups_of_8: bool,
        fan_in: usize,
        fan_out: usize,
        w_offset: usize,
        b_offset: usize,
    ) -> bool {
        let vec4 = Self::vec4_fits(fan_out, w_offset, b_offset);
        match self {
            MatmulVariant::Scalar | MatmulVariant::Tiled => true,
            MatmulVariant::Vec4 | MatmulVariant::Wide => vec4,
            MatmulVariant::Bcast => vec4 && fan_in % 4 == 0 && subgroups_of_8,
        }
    }

    /// The cores that can run this product (see [`MatmulVariant::runs`]).
    pub fn eligible(
        subgroups_of_8: bool,
        fan_in: usize,
        fan_out: usize,
        w_offset: usize,
        b_offset: usize,
    ) -> Vec<MatmulVariant> {
        Self::ALL
            .into_iter()
            .filter(|v| v.runs(subgroups_of_8, fan_in, fan_out, w_offset, b_offset))
            .collect()
    }

    /// The name used by `WGMLP_MATMUL`, the autotune cache and the bench.
    pub fn name(self) -> &'static str {
        match self {
            MatmulVariant::Scalar => "scalar",
            MatmulVariant::Vec4 => "vec4",
            MatmulVariant::Wide => "wide",
            MatmulVariant::Tiled => "tiled",
            MatmulVariant::Bcast => "bcast",
        }
    }

    /// The core named `name`.
    pub fn from_name(name: &str) -> Option<MatmulVariant> {
        MatmulVariant::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Whether this core needs fan_out and the parameter offsets to be multiples of 4.
    pub fn needs_vec4(self) -> bool {
        matches!(
            self,
            MatmulVariant::Vec4 | MatmulVariant::Wide | MatmulVariant::Bcast
        )
    }

    /// (rows, columns) of outputs one workgroup covers.
    pub fn tile(self) -> (usize, usize) {
        match self {
            MatmulVariant::Scalar => (32, 32),
            MatmulVariant::Vec4 => (64, 64),
            MatmulVariant::Wide => {
                let (wg_x, wg_y, rows, cols) = WIDE_BLOCK;
                (wg_y * rows, wg_x * cols * 4)
            }
            MatmulVariant::Tiled | MatmulVariant::Bcast => (64, 64),
        }
    }

    /// The forward kernel.
    pub fn forward_kernel(self) -> Kernel {
        match self {
            MatmulVariant::Scalar => Kernel::AffineForward,
            MatmulVariant::Vec4 => Kernel::AffineForwardVec4,
            MatmulVariant::Wide => Kernel::AffineForwardWide,
            MatmulVariant::Tiled => Kernel::AffineForwardTiled,
            MatmulVariant::Bcast => Kernel::AffineForwardBcast,
        }
    }

    /// The dW/db kernel.
    pub fn grad_weights_kernel(self) -> Kernel {
        match self {
            MatmulVariant::Scalar => Kernel::GradWeights,
            MatmulVariant::Vec4 => Kernel::GradWeightsVec4,
            MatmulVariant::Wide => Kernel::GradWeightsWide,
            MatmulVariant::Tiled => Kernel::GradWeightsTiled,
            MatmulVariant::Bcast => Kernel::GradWeightsBcast,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated `affine_wide.wgsl` declares the block [`WIDE_BLOCK`] says, so the tile
    /// the host plans grids with is the tile the kernel computes.
    #[test]
    fn the_generated_wide_core_matches_its_tile_constants() {
        let src = crate::gpu::kernels::AFFINE_WIDE_WGSL;
        let constant = |name: &str| -> usize {
            let line = src
                .lines()
                .find(|l| l.starts_with(&format!("const {name}: u32 = ")))
                .unwrap_or_else(|| panic!("affine_wide.wgsl declares no {name}"));
            line.rsplit("= ")
                .next()
                .and_then(|v| v.trim_end_matches(';').trim_end_matches('u').parse().ok())
                .unwrap_or_else(|| panic!("unreadable: {line}"))
        };
        let (wg_x, wg_y, rows, cols) = WIDE_BLOCK;
        assert_eq!(
            (
                constant("WG_X"),
                constant("WG_Y"),
                constant("ROWS"),
                constant("COLS")
            ),
            (wg_x, wg_y, rows, cols),
            "regenerate with scripts/gen_wide_kernels.py or update WIDE_BLOCK"
        );
        let accumulators = src.matches("var a").count();
        assert!(
            accumulators >= rows * cols,
            "{accumulators} accumulators declared for a {rows} × {cols} block"
        );
    }
}
