//! The dispatches of a model, built once per batch size (and per dataset for the gather) and
//! recorded any number of times: every step is a list of [`Dispatch`]es.

use std::sync::Arc;

use crate::config::{Layer, Task};
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::gpu::dataset::GpuDataset;
use crate::gpu::kernels::{Dispatch, Kernel, PipelineKey};
use crate::gpu::matmul::{self, ForwardOperands, GRAD_INPUT_WORKGROUP};
use crate::gpu::uniforms::{AlphaDims, ClipDims, DropoutDims, GatherDims, LayerDims, LossDims};

use super::GpuMlp;

/// Invocations of the loss kernel's one workgroup.
const LOSS_WORKGROUP: usize = 256;
/// Invocations per workgroup of the optimizer update and the gather.
const FLAT_WORKGROUP: u32 = 256;
/// Gradients per workgroup of gradient clipping's partial sums (each invocation sums
/// CLIP_PER_GROUP / 256 = 64 of them).
const CLIP_PER_GROUP: usize = 256 * 64;

/// Workgroups (partial sums) of gradient clipping over `n` gradients.
pub(super) fn clip_groups(n: usize) -> usize {
    n.div_ceil(CLIP_PER_GROUP)
}

/// Which running state and mode the loss kernel uses.
#[derive(Clone, Copy)]
pub(super) enum LossMode {
    /// Training state, gradients written, divergence tracked.
    Train,
    /// Evaluation state, no gradients.
    Eval,
    /// Evaluation state, gradients written (for `loss_and_gradients`).
    GradOnly,
}

/// The dispatches of one batch size.
pub(super) struct Plan {
    pub forward_train: Vec<Dispatch>,
    pub forward_eval: Vec<Dispatch>,
    pub loss_train: Vec<Dispatch>,
    pub loss_eval: Vec<Dispatch>,
    pub loss_grad_only: Vec<Dispatch>,
    pub backward: Vec<Dispatch>,
}

impl Plan {
    pub fn loss(&self, mode: LossMode) -> &[Dispatch] {
        match mode {
            LossMode::Train => &self.loss_train,
            LossMode::Eval => &self.loss_eval,
            LossMode::GradOnly => &self.loss_grad_only,
        }
    }
}

/// The gather dispatches (one per row chunk) of one dataset and batch size.
pub(super) struct GatherPlan {
    pub dispatches: Vec<Dispatch>,
}

/// Workgroups (x, y) for `items` invocations of a flat kernel, or an error past the grid.
pub(super) fn flat_grid(ctx: &GpuContext, op: &str, items: usize) -> Result<(u32, u32, u32)> {
    let groups = u32::try_from(items.div_ceil(FLAT_WORKGROUP as usize).max(1))
        .map_err(|_| Error::shape(op, "fewer elements", items))?;
    let (x, y) = ctx.grid_1d(groups);
    if y > ctx.max_workgroups_per_dim {
        return Err(Error::shape(
            op,
            format!(
                "at most {} elements",
                ctx.max_workgroups_per_dim as u64 * ctx.max_workgroups_per_dim as u64 * 256
            ),
            items,
        ));
    }
    Ok((x, y, 1))
}

impl GpuMlp {
    /// Every dispatch of a step with `batch` rows.
    pub(super) fn build_plan(&self, batch: usize) -> Result<Plan> {
        let ctx = &self.ctx;
        let training = self.training;
        let losses = |state: &wgpu::Buffer, grads: u32| match training {
            true => self.loss_dispatches(batch, state, grads),
            false => Ok(Vec::new()),
        };
        let mut plan = Plan {
            forward_train: Vec::new(),
            forward_eval: Vec::new(),
            loss_train: losses(&self.states.train, 1)?,
            loss_eval: losses(&self.states.eval, 0)?,
            loss_grad_only: losses(&self.states.eval, 1)?,
            backward: Vec::new(),
        };
        for (l, layer) in self.layers.iter().enumerate() {
            let input = if l == 0 { &self.xb } else { &self.y[l - 1] };
            let passes = [
                (true, &mut plan.forward_train),
                (false, &mut plan.forward_eval),
            ];
            for (store_z, out) in passes.into_iter().skip(usize::from(!training)) {
                out.extend(matmul::forward_dispatches(
                    ctx,
                    self.variants[l],
                    layer.activation,
                    LayerDims::of(batch, layer, store_z, Some(layer)),
                    ForwardOperands {
                        x: input,
                        params: &self.params,
                        z: &self.z[l],
                        y: &self.y[l],
                    },
                    false,
                )?);
            }
            if training && self.config.dropout > 0.0 && l + 1 < self.layers.len() {
                let d = self.dropout_dispatch(&self.y[l], batch * layer.fan_out, l)?;
                plan.forward_train.push(d);
            }
        }
        for l in (0..self.layers.len()).rev().filter(|_| training) {
            plan.backward.extend(self.backward_dispatches(batch, l)?);
        }
        Ok(plan)
    }

    /// dW/db of layer `l`, then (past the first layer) dZ of the layer before it.
    fn backward_dispatches(&self, batch: usize, l: usize) -> Result<Vec<Dispatch>> {
        let ctx = &self.ctx;
        let layer = &self.layers[l];
        let input = if l == 0 { &self.xb } else { &self.y[l - 1] };
        let dims = LayerDims::of(batch, layer, true, None);
        let mut out = matmul::grad_weights_dispatches(
            ctx,
            self.variants[l],
            dims,
            input,
            &self.dz[l],
            &self.grads,
        )?;
        let Some(prev) = l.checked_sub(1).map(|p| &self.layers[p]) else {
            return Ok(out);
        };
        match prev.alpha_offset {
            // A learned α needs the partial sums only the scalar grad_input writes.
            Some(alpha_offset) => {
                out.extend(matmul::grad_input_dispatches(
                    ctx,
                    prev.activation,
                    LayerDims::of(batch, layer, true, Some(prev)),
                    &self.dz[l],
                    &self.params,
                    &self.z[l - 1],
                    &self.dz[l - 1],
                    &self.partials,
                )?);
                out.push(self.reduce_alpha_dispatch(batch, layer, alpha_offset)?);
            }
            None => {
                let t_offset = self.t_offsets[l];
                out.push(matmul::transpose_dispatch(
                    ctx,
                    &dims,
                    &self.params,
                    &self.params_t,
                    t_offset,
                )?);
                out.extend(matmul::forward_dispatches(
                    ctx,
                    self.grad_input_variants[l],
                    prev.activation,
                    grad_input_dims(batch, layer, t_offset),
                    ForwardOperands {
                        x: &self.dz[l],
                        params: &self.params_t,
                        z: &self.z[l - 1],
                        y: &self.dz[l - 1],
                    },
                    true,
                )?);
                if self.config.dropout > 0.0 {
                    // dZ_prev = (dZ·Wᵀ ⊙ mask·scale) ⊙ act'(Z_prev): the mask commutes.
                    out.push(self.dropout_dispatch(
                        &self.dz[l - 1],
                        batch * prev.fan_out,
                        l - 1,
                    )?);
                }
            }
        }
        Ok(out)
    }

    /// Inverted dropout in place on `n` values of hidden layer `layer` (its Y or its dZ).
    fn dropout_dispatch(&self, buf: &wgpu::Buffer, n: usize, layer: usize) -> Result<Dispatch> {
        let ctx = &self.ctx;
        let p = self.config.dropout;
        let dims = ctx.uniform(
            "dropout",
            &DropoutDims {
                n: n as u32,
                layer: layer as u32,
                seed: crate::dropout::mask_seed(self.config.seed),
                p,
                scale: crate::dropout::scale(p),
                _pad0: 0,
                _pad1: 0,
                _pad2: 0,
            },
        );
        Ok(Dispatch::new(
            Kernel::Dropout,
            ctx.pipeline(&PipelineKey::new(Kernel::Dropout))?,
            ctx.bind_group(
                Kernel::Dropout,
                &[(0, buf), (1, &self.states.train), (2, &dims)],
            ),
            flat_grid(ctx, "dropout", n)?,
        ))
    }

    fn reduce_alpha_dispatch(
        &self,
        batch: usize,
        layer: &Layer,
        alpha_offset: usize,
    ) -> Result<Dispatch> {
        let ctx = &self.ctx;
        let (x, y, z) = matmul::grad_input_grid(ctx, batch, layer.fan_in)?;
        let count = (x * y * z) as usize * GRAD_INPUT_WORKGROUP;
        ctx.check_loop_trip(
            "the learned-α reduction",
            (count / 256) as u64 + 16,
            "lower --batch-size or the layer width",
        )?;
        let uniform = ctx.uniform(
            "reduce_alpha",
            &AlphaDims {
                count: count as u32,
                alpha_offset: alpha_offset as u32,
                _pad0: 0,
                _pad1: 0,
            },
        );
        Ok(Dispatch::new(
            Kernel::ReduceAlpha,
            ctx.pipeline(&PipelineKey::new(Kernel::ReduceAlpha))?,
            ctx.bind_group(
                Kernel::ReduceAlpha,
                &[(0, &self.partials), (1, &self.grads), (2, &uniform)],
            ),
            (1, 1, 1),
        ))
    }

    /// The loss over a batch in parts of rows, so no invocation's loops run past
    /// `max_loop_trip` (each row costs about 3 × classes iterations).
    fn loss_dispatches(
        &self,
        batch: usize,
        state: &wgpu::Buffer,
        training: u32,
    ) -> Result<Vec<Dispatch>> {
        let ctx = &self.ctx;
        let classes = self.config.output;
        let per_row = 3 * classes as u64 + 4;
        ctx.check_loop_trip("the loss", per_row + 16, "use fewer outputs (classes)")?;
        let rows_per_lane = (ctx.max_loop_trip as u64 / per_row).max(1) as usize;
        let rows_per_part = rows_per_lane * LOSS_WORKGROUP;
        let pipeline = ctx.pipeline(&PipelineKey::new(Kernel::Loss))?;
        let last = self.layers.len() - 1;
        let mut out = Vec::new();
        for begin in (0..batch).step_by(rows_per_part) {
            let uniform = ctx.uniform(
                "loss",
                &LossDims {
                    batch: batch as u32,
                    classes: classes as u32,
                    loss_kind: self.config.loss.wgsl_id(self.config.task),
                    training,
                    row_begin: begin as u32,
                    row_end: (begin + rows_per_part).min(batch) as u32,
                    _pad0: 0,
                    stride: self.layout.output_stride() as u32,
                },
            );
            let group = ctx.bind_group(
                Kernel::Loss,
                &[
                    (0, &self.y[last]),
                    (1, &self.yb),
                    (2, &self.dz[last]),
                    (3, state),
                    (4, &uniform),
                    (5, &self.tb),
                    (6, &self.target_scale),
                ],
            );
            out.push(Dispatch::new(
                Kernel::Loss,
                Arc::clone(&pipeline),
                group,
                (1, 1, 1),
            ));
        }
        Ok(out)
    }

    /// Gradient clipping's two dispatches: partial sums of squares, then the factor.
    fn clip_dispatches(&self) -> Result<Vec<Dispatch>> {
        let ctx = &self.ctx;
        // Over the device buffer: its gaps and padding hold zero gradients.
        let n = self.layout.len;
        let groups = clip_groups(n).max(1);
        ctx.check_loop_trip(
            "the gradient-norm reduction",
            (groups / 256 + 16) as u64,
            "use fewer parameters",
        )?;
        let dims = ctx.uniform(
            "clip",
            &ClipDims {
                n: n as u32,
                per_group: CLIP_PER_GROUP as u32,
                groups: groups as u32,
                _pad0: 0,
            },
        );
        let bindings = [
            (0, &self.grads),
            (1, &self.clip_partials),
            (2, &self.states.train),
            (3, &self.opt_uniform),
            (4, &dims),
        ];
        let (x, y) = ctx.grid_1d(groups as u32);
        if y > ctx.max_workgroups_per_dim {
            return Err(Error::shape("gradient clipping", "fewer parameters", n));
        }
        Ok(vec![
            Dispatch::new(
                Kernel::ClipPartial,
                ctx.pipeline(&PipelineKey::new(Kernel::ClipPartial))?,
                ctx.bind_group(Kernel::ClipPartial, &bindings),
                (x, y, 1),
            ),
            Dispatch::new(
                Kernel::ClipFinish,
                ctx.pipeline(&PipelineKey::new(Kernel::ClipFinish))?,
                ctx.bind_group(Kernel::ClipFinish, &bindings),
                (1, 1, 1),
            ),
        ])
    }

    /// The optimizer's tick and update over the flat parameter buffer (after gradient
    /// clipping's two dispatches when it is on).
    pub(super) fn update_dispatches(&self) -> Result<Vec<Dispatch>> {
        let ctx = &self.ctx;
        let mut out = if self.optimizer.clip_norm > 0.0 {
            self.clip_dispatches()?
        } else {
            Vec::new()
        };
        let update = Dispatch::new(
            Kernel::OptUpdate,
            ctx.pipeline(&PipelineKey::new(Kernel::OptUpdate))?,
            ctx.bind_group(
                Kernel::OptUpdate,
                &[
                    (0, &self.params),
                    (1, &self.grads),
                    (2, &self.moment1),
                    (3, &self.moment2),
                    (4, &self.states.train),
                    (5, &self.opt_uniform),
                ],
            ),
            flat_grid(ctx, "optimizer update", self.layout.len)?,
        );
        let tick = Dispatch::new(
            Kernel::OptTick,
            ctx.pipeline(&PipelineKey::new(Kernel::OptTick))?,
            ctx.bind_group(Kernel::OptTick, &[(4, &self.states.train)]),
            (1, 1, 1),
        );
        out.extend([tick, update]);
        Ok(out)
    }

    /// The gather of `batch` rows from `data` into this model's input (one dispatch per row
    /// chunk of the dataset).
    pub(super) fn build_gather(&self, data: &GpuDataset, batch: usize) -> Result<GatherPlan> {
        if data.n_features != self.config.input {
            return Err(Error::shape(
                "dataset features",
                format!("{} features (the model's input width)", self.config.input),
                data.n_features,
            ));
        }
        let regress = self.config.task == Task::Regress;
        if regress != (data.n_targets > 0) || (regress && data.n_targets != self.config.output) {
            return Err(Error::shape(
                "dataset targets",
                match self.config.task {
                    Task::Regress => {
                        format!("{} regression targets per sample", self.config.output)
                    }
                    Task::Classify => "class labels (a classification model)".to_string(),
                },
                format!("{} target columns", data.n_targets),
            ));
        }
        if data.n_classes > self.config.output {
            return Err(Error::shape(
                "dataset classes",
                format!(
                    "at most {} classes (the model's outputs)",
                    self.config.output
                ),
                data.n_classes,
            ));
        }
        let ctx = &self.ctx;
        let pipeline = ctx.pipeline(&PipelineKey::new(Kernel::Gather))?;
        let grid = flat_grid(ctx, "batch gather", batch * data.n_features)?;
        let target_grid = flat_grid(ctx, "target gather", batch * data.n_targets.max(1))?;
        // The features into xb; for regression the same gather copies the targets into tb.
        let sources = data
            .chunks
            .iter()
            .map(|c| (c, data.n_features, &self.xb, grid))
            .chain(
                data.target_chunks
                    .iter()
                    .map(|c| (c, data.n_targets, &self.tb, target_grid)),
            );
        let dispatches = sources
            .map(|((values, start, end), width, out, grid)| {
                let dims = ctx.uniform(
                    "gather",
                    &GatherDims {
                        batch: batch as u32,
                        n_features: width as u32,
                        row_start: *start,
                        row_end: *end,
                    },
                );
                let group = ctx.bind_group(
                    Kernel::Gather,
                    &[
                        (0, values),
                        (1, &data.labels),
                        (2, &self.idx),
                        (3, out),
                        (4, &self.yb),
                        (5, &dims),
                    ],
                );
                Dispatch::new(Kernel::Gather, Arc::clone(&pipeline), group, grid)
            })
            .collect();
        Ok(GatherPlan { dispatches })
    }
}

/// dZ·Wᵀ of `layer` as a forward-core product: `batch × fan_out → fan_in`, Wᵀ at `t_offset`
/// of the transposed buffer, no bias (b_offset only needs to be aligned like w_offset).
pub(super) fn grad_input_dims(batch: usize, layer: &Layer, t_offset: usize) -> LayerDims {
    LayerDims {
        batch: batch as u32,
        fan_in: layer.fan_out as u32,
        fan_out: layer.fan_in as u32,
        w_offset: t_offset as u32,
        b_offset: t_offset as u32,
        store_z: 1,
        ..Default::default()
    }
}
