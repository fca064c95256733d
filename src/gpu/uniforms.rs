//! Rust mirrors of the structs in `shaders/structs.wgsl`, the one place the kernels' uniform
//! and storage structs are defined. [`MIRRORS`] lists every member's offset on the Rust side;
//! a test lays out the WGSL with naga and compares, so a field added on one side only fails
//! `cargo test`.

use bytemuck::{Pod, Zeroable};
use std::mem::{offset_of, size_of};

use crate::config::Layer;

/// `FLAG_FIRST` of structs.wgsl: the dispatch holds the first part of a split reduction.
pub const FLAG_FIRST: u32 = 1;
/// `FLAG_LAST`: the dispatch holds the last part (the epilogue runs).
pub const FLAG_LAST: u32 = 2;
/// `FLAG_GRAD_INPUT`: a forward core computes dZ_prev = (dZ·Wᵀ) ⊙ act'(Z_prev).
pub const FLAG_GRAD_INPUT: u32 = 4;

/// `Layer`: one dispatch of a layer kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq, Eq)]
pub struct LayerDims {
    /// Rows of X.
    pub batch: u32,
    /// Columns of X, rows of W.
    pub fan_in: u32,
    /// Columns of W.
    pub fan_out: u32,
    /// Index of W in the parameter buffer.
    pub w_offset: u32,
    /// Index of b in the parameter buffer.
    pub b_offset: u32,
    /// 1 when the forward keeps Z.
    pub store_z: u32,
    /// Index of the learned pReLU α in the parameters (grad_input: the previous layer's).
    pub alpha_offset: u32,
    /// 1 when the kernel reads α from the parameters instead of `ACT_P`.
    pub alpha_learned: u32,
    /// First index of the reduction this dispatch sums.
    pub r_begin: u32,
    /// End (exclusive) of the reduction this dispatch sums.
    pub r_end: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Padding to 16 bytes.
    pub _pad0: u32,
}

impl LayerDims {
    /// The uniform of `layer` for a batch; the α fields are those of `alpha_of` (the layer
    /// itself for the forward, the previous layer for grad_input). The reduction range is left
    /// empty: [`crate::gpu::matmul`] fills it in per dispatch.
    pub fn of(batch: usize, layer: &Layer, store_z: bool, alpha_of: Option<&Layer>) -> Self {
        let alpha = alpha_of.and_then(|l| l.alpha_offset);
        LayerDims {
            batch: batch as u32,
            fan_in: layer.fan_in as u32,
            fan_out: layer.fan_out as u32,
            w_offset: layer.w_offset as u32,
            b_offset: layer.b_offset as u32,
            store_z: u32::from(store_z),
            alpha_offset: alpha.unwrap_or(0) as u32,
            alpha_learned: u32::from(alpha.is_some()),
            ..Default::default()
        }
    }
}

/// `LossDims`: the loss of rows `row_begin..row_end` of a batch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LossDims {
    /// Rows of the whole batch (the mean's denominator).
    pub batch: u32,
    /// Outputs per row.
    pub classes: u32,
    /// `Loss::wgsl_id`: 0 cross-entropy, 1 MSE on one-hot targets, 2 MSE, 3 L1, 4 Huber.
    pub loss_kind: u32,
    /// 1: write dLoss/dlogits and track divergence.
    pub training: u32,
    /// First row of this dispatch.
    pub row_begin: u32,
    /// End row (exclusive) of this dispatch.
    pub row_end: u32,
    /// Padding.
    pub _pad0: u32,
    /// Floats per row of logits and dlogits (the output layer's padded width).
    pub stride: u32,
}

/// `OptParams`: optimizer hyper-parameters.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct OptParams {
    /// Parameters to update.
    pub n: u32,
    /// `OptimizerKind::wgsl_id`.
    pub kind: u32,
    /// Learning rate.
    pub lr: f32,
    /// Momentum μ.
    pub momentum: f32,
    /// Adam β1.
    pub beta1: f32,
    /// Adam β2.
    pub beta2: f32,
    /// Adam ε.
    pub eps: f32,
    /// Weight decay.
    pub weight_decay: f32,
    /// Gradient clipping by global norm (0: off).
    pub clip_norm: f32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
}

/// `TrainState`: the running state shared by `loss.wgsl` and `optim.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq)]
pub struct TrainState {
    /// Optimizer steps applied.
    pub step: u32,
    /// 1 once a training batch had a non-finite loss (updates stop from then on).
    pub diverged: u32,
    /// The step whose loss was not finite.
    pub bad_step: u32,
    /// That loss.
    pub bad_loss: f32,
    /// Σ of per-sample losses since the last reset.
    pub loss_sum: f32,
    /// Correctly classified samples since the last reset.
    pub correct: u32,
    /// Samples since the last reset.
    pub count: u32,
    /// Padding.
    pub _pad0: u32,
    /// Regression: Σ squared error over outputs and samples, in the targets' units.
    pub sq_err: f32,
    /// Regression: Σ absolute error over outputs and samples, in the targets' units.
    pub abs_err: f32,
    /// Gradient clipping: this step's factor, written by `clip.wgsl`.
    pub grad_scale: f32,
    /// Padding.
    pub _pad2: u32,
}

impl TrainState {
    /// Mean loss since the last reset.
    pub fn mean_loss(&self) -> f32 {
        self.loss_sum / self.count.max(1) as f32
    }
    /// Accuracy since the last reset.
    pub fn accuracy(&self) -> f32 {
        self.correct as f32 / self.count.max(1) as f32
    }
}

/// Byte offset of `loss_sum` in `TrainState`: metrics are cleared from here on.
pub const METRICS_OFFSET: u64 = offset_of!(TrainState, loss_sum) as u64;
/// Size of `TrainState` in bytes.
pub const STATE_BYTES: u64 = size_of::<TrainState>() as u64;

/// `ClipDims`: the blocks of gradient clipping's sum of squares.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ClipDims {
    /// Gradients.
    pub n: u32,
    /// Gradients per workgroup of the partial sums.
    pub per_group: u32,
    /// Workgroups (partial sums).
    pub groups: u32,
    /// Padding.
    pub _pad0: u32,
}

/// `DropoutDims`: inverted dropout on `n` values of hidden layer `layer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct DropoutDims {
    /// Values (batch × width).
    pub n: u32,
    /// Hidden layer index (part of the mask's hash).
    pub layer: u32,
    /// `dropout::mask_seed` of the model seed.
    pub seed: u32,
    /// Drop probability.
    pub p: f32,
    /// 1 / (1 − p).
    pub scale: f32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
}

/// `GatherDims`: a batch gather from one row chunk of a dataset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GatherDims {
    /// Rows of the batch.
    pub batch: u32,
    /// Features per row.
    pub n_features: u32,
    /// First dataset row of the chunk.
    pub row_start: u32,
    /// End row (exclusive) of the chunk.
    pub row_end: u32,
}

/// `AlphaDims`: the reduction of learned-α partial sums.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct AlphaDims {
    /// Partial sums.
    pub count: u32,
    /// Where α's gradient goes.
    pub alpha_offset: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
}

/// `StreamDims`: a streaming kernel over vec4 buffers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct StreamDims {
    /// vec4 elements to process.
    pub n_vec4: u32,
    /// vec4s per workgroup in the lane-interleaved layout (0 in the one-per-invocation layout).
    pub per_group: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
}

/// `TransposeDims`: one matrix transpose inside flat buffers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TransposeDims {
    /// Rows of the source.
    pub rows: u32,
    /// Columns of the source.
    pub cols: u32,
    /// Index of the source's first element.
    pub src_offset: u32,
    /// Index of the destination's first element.
    pub dst_offset: u32,
}

/// `FusedDims`: one dispatch of the fused MLP kernel (`src/gpu/fused`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct FusedDims {
    /// Rows of the batch.
    pub batch: u32,
    /// Rows per chunk.
    pub chunk_rows: u32,
    /// Chunks of the batch.
    pub chunks: u32,
    /// Row groups dispatched (one per chunk).
    pub slots: u32,
    /// Floats per slot in the partial buffer.
    pub stride: u32,
    /// What the dispatch computes (`FLAG_GRADS` … of fused_mlp.wgsl).
    pub flags: u32,
    /// 0 softmax cross-entropy, 1 MSE.
    pub loss_kind: u32,
    /// 1 / batch.
    pub inv_batch: f32,
    /// Offset of a slot's metrics in its row of the partial buffer.
    pub metrics_at: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
}

/// `FusedLayer`: one affine layer of a fused model.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct FusedLayer {
    /// Offset of W (row-major fan_in × fan_out) in the flat parameters.
    pub w_offset: u32,
    /// Offset of b.
    pub b_offset: u32,
    /// Offset of the learned pReLU α (when `learned`).
    pub alpha_offset: u32,
    /// `Activation::wgsl_id`.
    pub act: u32,
    /// `Activation::param`.
    pub act_p: f32,
    /// Input width.
    pub fan_in: u32,
    /// Output width.
    pub fan_out: u32,
    /// 1: the activation parameter is the learned α.
    pub learned: u32,
}

/// `FusedLayers`: every layer of a fused model (the rest zero).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct FusedLayers {
    /// The layers.
    pub l: [FusedLayer; 16],
}

/// `ReduceDims`: the sum of the fused kernel's per-slot gradients and metrics.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ReduceDims {
    /// vec4s of gradients.
    pub n4: u32,
    /// Slots to sum.
    pub slots: u32,
    /// vec4s per slot.
    pub stride4: u32,
    /// vec4 index of the metrics in a slot.
    pub metrics4: u32,
    /// Rows of the batch.
    pub batch: u32,
    /// `RED_GRADS` … of fused_reduce.wgsl.
    pub flags: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
}

/// `PackDims`: the copy of the parameters into the fused kernel's texture.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PackDims {
    /// Parameters.
    pub n: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
    /// Padding.
    pub _pad2: u32,
}

/// A Rust mirror: WGSL struct name, Rust size, and each member's (name, offset).
#[cfg(test)]
pub type Mirror = (&'static str, usize, &'static [(&'static str, usize)]);

#[cfg(test)]
macro_rules! mirror {
    ($wgsl:literal, $ty:ty, [$($field:ident),* $(,)?]) => {
        ($wgsl, size_of::<$ty>(), &[$((stringify!($field), offset_of!($ty, $field))),*])
    };
}

/// Every struct of structs.wgsl with its Rust layout, for the drift test.
#[cfg(test)]
pub const MIRRORS: &[Mirror] = &[
    mirror!(
        "Layer",
        LayerDims,
        [
            batch,
            fan_in,
            fan_out,
            w_offset,
            b_offset,
            store_z,
            alpha_offset,
            alpha_learned,
            r_begin,
            r_end,
            flags,
            _pad0
        ]
    ),
    mirror!(
        "LossDims",
        LossDims,
        [
            batch, classes, loss_kind, training, row_begin, row_end, _pad0, stride
        ]
    ),
    mirror!(
        "OptParams",
        OptParams,
        [
            n,
            kind,
            lr,
            momentum,
            beta1,
            beta2,
            eps,
            weight_decay,
            clip_norm,
            _pad0,
            _pad1,
            _pad2
        ]
    ),
    mirror!(
        "TrainState",
        TrainState,
        [
            step, diverged, bad_step, bad_loss, loss_sum, correct, count, _pad0, sq_err, abs_err,
            grad_scale, _pad2
        ]
    ),
    mirror!("ClipDims", ClipDims, [n, per_group, groups, _pad0]),
    mirror!(
        "DropoutDims",
        DropoutDims,
        [n, layer, seed, p, scale, _pad0, _pad1, _pad2]
    ),
    mirror!(
        "GatherDims",
        GatherDims,
        [batch, n_features, row_start, row_end]
    ),
    mirror!("AlphaDims", AlphaDims, [count, alpha_offset, _pad0, _pad1]),
    mirror!("StreamDims", StreamDims, [n_vec4, per_group, _pad0, _pad1]),
    mirror!(
        "TransposeDims",
        TransposeDims,
        [rows, cols, src_offset, dst_offset]
    ),
    mirror!(
        "FusedDims",
        FusedDims,
        [
            batch, chunk_rows, chunks, slots, stride, flags, loss_kind, inv_batch, metrics_at,
            _pad0, _pad1, _pad2
        ]
    ),
    mirror!(
        "FusedLayer",
        FusedLayer,
        [
            w_offset,
            b_offset,
            alpha_offset,
            act,
            act_p,
            fan_in,
            fan_out,
            learned
        ]
    ),
    mirror!("FusedLayers", FusedLayers, [l]),
    mirror!(
        "ReduceDims",
        ReduceDims,
        [n4, slots, stride4, metrics4, batch, flags, _pad0, _pad1]
    ),
    mirror!("PackDims", PackDims, [n, _pad0, _pad1, _pad2]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::kernels::STRUCTS_WGSL;

    /// A struct as naga lays it out: name, size, members (name, offset).
    type Layout = (String, u32, Vec<(String, u32)>);

    /// Every struct naga finds in `source`.
    fn wgsl_layouts(source: &str) -> Vec<Layout> {
        let module = naga::front::wgsl::parse_str(source).expect("structs.wgsl parses");
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).expect("layout");
        let mut out = Vec::new();
        for (handle, ty) in module.types.iter() {
            if let naga::TypeInner::Struct { members, .. } = &ty.inner {
                let name = ty.name.clone().unwrap_or_default();
                let fields = members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                    .collect();
                out.push((name, layouter[handle].size, fields));
            }
        }
        out
    }

    #[test]
    fn every_wgsl_struct_matches_its_rust_mirror_member_by_member() {
        let wgsl = wgsl_layouts(STRUCTS_WGSL);
        assert_eq!(
            wgsl.len(),
            MIRRORS.len(),
            "structs.wgsl and MIRRORS list different structs"
        );
        for (name, size, members) in MIRRORS {
            let (_, wsize, wmembers) = wgsl
                .iter()
                .find(|(n, _, _)| n == name)
                .unwrap_or_else(|| panic!("{name} is mirrored in Rust but not in structs.wgsl"));
            assert_eq!(*wsize as usize, *size, "{name}: size");
            let rust: Vec<(String, u32)> = members
                .iter()
                .map(|(n, o)| (n.to_string(), *o as u32))
                .collect();
            assert_eq!(&rust, wmembers, "{name}: members and offsets");
        }
    }

    #[test]
    fn the_drift_test_sees_a_reordered_member() {
        let swapped = STRUCTS_WGSL.replace(
            "    r_begin: u32,\n    r_end: u32,",
            "    r_end: u32,\n    r_begin: u32,",
        );
        assert_ne!(swapped, STRUCTS_WGSL, "the test's edit must apply");
        let layer = wgsl_layouts(&swapped)
            .into_iter()
            .find(|(n, _, _)| n == "Layer")
            .unwrap();
        let want: Vec<(String, u32)> = MIRRORS[0]
            .2
            .iter()
            .map(|(n, o)| (n.to_string(), *o as u32))
            .collect();
        assert_ne!(layer.2, want);
    }
}
