//! The generated part of the fused MLP kernel: shape constants and the entry point, with every
//! loop over a layer's width unrolled for one [`FusedShape`].
//!
//! Unrolling is what keeps a layer's weights and a row's values in registers: on lavapipe an
//! array indexed by a run-time value lives in memory accessed one lane at a time, and Mesa
//! lowers each such access of a private array to a ladder over the whole array (a kernel with
//! a 576-float private row store took 30 s to compile). So the only loops left are over rows,
//! layers and input blocks, and the chunk's pre-activations wait in a storage buffer (`rows`).
//! The shader is `shaders/structs.wgsl` + `activations.wgsl` + `fused_mlp.wgsl` + this text; each piece
//! is plain WGSL, and the tests validate the composition for every shape they run.

use std::fmt::Write;

mod backward;

use super::shape::{Exchange, FusedShape};

/// Most gradient accumulators one pass over the chunk's rows carries in registers.
const ACCUMULATORS: usize = 128;

/// The complete WGSL source of the fused kernel for `shape`.
pub fn source(shape: &FusedShape) -> String {
    let mut g = Gen::new(shape);
    g.header();
    g.fwd_input();
    if shape.hidden_layers > 1 {
        g.fwd_hidden();
    }
    g.fwd_output();
    g.bwd_output();
    if shape.hidden_layers > 1 {
        g.bwd_hidden();
    }
    g.bwd_input();
    g.main();
    format!(
        "{}\n{}\n{}\n{}",
        crate::gpu::kernels::STRUCTS_WGSL,
        crate::gpu::kernels::ACTIVATIONS_WGSL,
        super::FUSED_MLP_WGSL,
        g.out
    )
}

/// Text builder with the shape's derived sizes.
struct Gen<'s> {
    s: &'s FusedShape,
    out: String,
    /// Lanes per row group.
    lanes: usize,
    /// Slots per lane of the hidden width.
    ch: usize,
    /// Padded hidden width.
    hp: usize,
    /// Slots per lane of the output width.
    co: usize,
    /// Slots per lane of one input block.
    mb: usize,
    /// Inputs per block of the first layer.
    kb: usize,
    /// Inputs of one block that the unrolled code covers.
    kb_used: usize,
    /// Slots per lane of one column group of a hidden layer's forward.
    group: usize,
}

impl<'s> Gen<'s> {
    fn new(s: &'s FusedShape) -> Self {
        let lanes = s.lanes as usize;
        let kb = s.input_block as usize * lanes;
        let kb_used = if s.input_blocks() == 1 {
            kb.min(s.input as usize)
        } else {
            kb
        };
        Gen {
            s,
            out: String::new(),
            lanes,
            ch: s.hidden_slots as usize,
            hp: s.hidden_slots as usize * lanes,
            co: s.output_slots() as usize,
            mb: s.input_block as usize,
            kb,
            kb_used,
            group: s.hidden_group() as usize,
        }
    }

    fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn header(&mut self) {
        let s = self.s;
        let xch = self.hp.max(self.kb).max(self.co * self.lanes);
        let mut h = String::new();
        let _ = writeln!(h, "// ---- generated for {} ----", s.describe());
        let _ = writeln!(h, "const S: u32 = {}u;", s.lanes);
        let _ = writeln!(h, "const K0: u32 = {}u;", s.input);
        let _ = writeln!(h, "const NH: u32 = {}u;", s.hidden_layers);
        let _ = writeln!(h, "const O: u32 = {}u;", s.output);
        let _ = writeln!(h, "const KB: u32 = {}u;", self.kb);
        let _ = writeln!(h, "const NB: u32 = {}u;", s.input_blocks());
        let _ = writeln!(
            h,
            "// A row of the chunk store: NH hidden layers of CH4 vec4s, then OUT4 of the output."
        );
        let _ = writeln!(h, "const CH4: u32 = {}u;", s.hidden_vec4s());
        let _ = writeln!(h, "const ROW4: u32 = {}u;", s.row_vec4s());
        let _ = writeln!(
            h,
            "const OUT4: u32 = {}u;",
            s.hidden_layers * s.hidden_vec4s()
        );
        if s.exchange == Exchange::Workgroup {
            let _ = writeln!(h, "var<workgroup> xch: array<f32, {xch}>;");
            let _ = writeln!(h, "var<workgroup> red: array<f32, {}>;", self.lanes);
        }
        self.out.push_str(&h);
    }

    /// Makes every lane see the values spread over the lanes as `{src}{m}` (slots m0..m1):
    /// defines `{dst}{j}` for m0·S ≤ j < min(m1·S, limit).
    fn share(&mut self, src: &str, dst: &str, slots: (usize, usize), limit: usize) {
        let (m0, m1) = slots;
        let js = m0 * self.lanes..(m1 * self.lanes).min(limit);
        match self.s.exchange {
            Exchange::Subgroup => {
                for j in js {
                    let (m, s) = (j / self.lanes, j % self.lanes);
                    self.line(&format!(
                        "        let {dst}{j} = subgroupBroadcast({src}{m}, {s}u);"
                    ));
                }
            }
            Exchange::Workgroup => {
                self.line("        workgroupBarrier();");
                for m in m0..m1 {
                    self.line(&format!(
                        "        xch[{}u + lane] = {src}{m};",
                        (m - m0) * self.lanes
                    ));
                }
                self.line("        workgroupBarrier();");
                for j in js {
                    self.line(&format!(
                        "        let {dst}{j} = xch[{}u];",
                        j - m0 * self.lanes
                    ));
                }
            }
        }
    }

    /// `let {dst} = op over the lanes of {src}` (op: Add, Max or Min).
    fn reduce(&mut self, op: &str, src: &str, dst: &str, indent: &str) {
        match self.s.exchange {
            Exchange::Subgroup => {
                self.line(&format!("{indent}let {dst} = subgroup{op}({src});"));
            }
            Exchange::Workgroup => {
                self.line(&format!("{indent}workgroupBarrier();"));
                self.line(&format!("{indent}red[lane] = {src};"));
                self.line(&format!("{indent}workgroupBarrier();"));
                self.line(&format!("{indent}var {dst} = red[0];"));
                for s in 1..self.lanes {
                    let e = match op {
                        "Add" => format!("{dst} + red[{s}u]"),
                        "Max" => format!("max({dst}, red[{s}u])"),
                        _ => format!("min({dst}, red[{s}u])"),
                    };
                    self.line(&format!("{indent}{dst} = {e};"));
                }
            }
        }
    }

    /// `{dst}{m} = func(z)` for the values `{src}{m}`, m0 ≤ m < m1, in vec4 packs; `func` is
    /// called as `func(v, prev.act, pa)` (or without `pa`).
    fn act(&mut self, func: &str, src: &str, dst: &str, slots: (usize, usize), param: bool) {
        let (m0, m1) = slots;
        for g in 0..(m1 - m0).div_ceil(4) {
            let parts: Vec<String> = (0..4)
                .map(|t| {
                    let m = m0 + 4 * g + t;
                    if m < m1 {
                        format!("{src}{m}")
                    } else {
                        "0.0".into()
                    }
                })
                .collect();
            let p = if param { ", pa" } else { "" };
            self.line(&format!(
                "        let {dst}v{m0}_{g} = {func}(vec4<f32>({}), prev.act{p});",
                parts.join(", ")
            ));
            for t in 0..4 {
                let m = m0 + 4 * g + t;
                if m < m1 {
                    let c = ["x", "y", "z", "w"][t];
                    self.line(&format!("        let {dst}{m} = {dst}v{m0}_{g}.{c};"));
                }
            }
        }
    }

    /// `let {dst}{m}` = slot m (m0 ≤ m < m1) of the row's vector at vec4 `at` of the store.
    fn load(&mut self, dst: &str, at: &str, slots: (usize, usize)) {
        let (m0, m1) = slots;
        for q in m0 / 4..m1.div_ceil(4) {
            self.line(&format!("        let {dst}q{q} = rows[rb + {at} + {q}u];"));
        }
        for m in m0..m1 {
            let c = ["x", "y", "z", "w"][m % 4];
            self.line(&format!("        let {dst}{m} = {dst}q{}.{c};", m / 4));
        }
    }

    /// Stores `{src}{m}` (m < slots) as the row's vector at vec4 `at` of the store.
    fn store(&mut self, src: &str, at: &str, slots: usize) {
        for q in 0..slots.div_ceil(4) {
            let parts: Vec<String> = (4 * q..4 * q + 4)
                .map(|m| {
                    if m < slots {
                        format!("{src}{m}")
                    } else {
                        "0.0".into()
                    }
                })
                .collect();
            self.line(&format!(
                "        rows[rb + {at} + {q}u] = vec4<f32>({});",
                parts.join(", ")
            ));
        }
    }

    fn row_loop(&mut self) {
        self.line("    for (var r = 0u; r < nrows; r++) {");
        self.line("        let rb = ((r0 + r) * S + lane) * ROW4;");
    }

    /// `let b{c}` = the layer's bias for the lane's columns `jc{c}` (`cols` slots, width `n`).
    fn biases(&mut self, cols: usize, n: &str) {
        for c in 0..cols {
            self.line(&format!(
                "    let b{c} = fused_param(layer.b_offset + jc{c}, jc{c} < {n});"
            ));
        }
    }

    /// `let x{m}` = the row's inputs i0 + S·m + lane of the current input block.
    fn inputs(&mut self) {
        self.line("        let xrow = (r0 + r) * K0 + i0 + lane;");
        for m in 0..self.mb {
            let o = self.lanes * m;
            self.line(&format!(
                "        let x{m} = fused_input(xrow + {o}u, i0 + lane + {o}u < K0);"
            ));
        }
    }

    /// Layer 0, forward: Z0 = X·W0 + b0, the input streamed in blocks of KB.
    fn fwd_input(&mut self) {
        let ch = self.ch;
        self.line("fn fwd_input(lane: u32, r0: u32, nrows: u32) {");
        self.line("    let layer = net.l[0];");
        self.line("    let n = layer.fan_out;");
        self.columns(ch, "0u", "    ");
        self.biases(ch, "n");
        self.row_loop();
        self.store("b", "0u", ch);
        self.line("    }");
        self.line("    for (var blk = 0u; blk < NB; blk++) {");
        self.line("    let i0 = blk * KB;");
        for q in 0..self.kb_used {
            for c in 0..ch {
                self.line(&format!(
                    "    let w{q}_{c} = fused_param(layer.w_offset + (i0 + {q}u) * n + jc{c}, i0 + {q}u < K0 && jc{c} < n);"
                ));
            }
        }
        self.row_loop();
        self.inputs();
        self.share("x", "e", (0, self.mb), self.kb_used);
        self.load("a", "0u", (0, ch));
        for c in 0..ch {
            self.line(&format!("        var s{c} = a{c};"));
        }
        for q in 0..self.kb_used {
            for c in 0..ch {
                self.line(&format!("        s{c} = s{c} + e{q} * w{q}_{c};"));
            }
        }
        self.store("s", "0u", ch);
        self.line("    }");
        self.line("    }");
        self.line("}");
    }

    /// `let w{i}_{c}` = W[i][jc{c}] for i < hp, c < cols (masked by k and `n`); the columns
    /// `jc{c}` are defined by the caller.
    fn weights_by_column(&mut self, cols: usize, n: &str) {
        for i in 0..self.hp {
            for c in 0..cols {
                self.line(&format!(
                    "    let w{i}_{c} = fused_param(layer.w_offset + {i}u * {n} + jc{c}, {i}u < k && jc{c} < {n});"
                ));
            }
        }
    }

    /// `let jc{c}` = the lane's column of slot `first + c`.
    fn columns(&mut self, cols: usize, first: &str, indent: &str) {
        for c in 0..cols {
            self.line(&format!("{indent}let jc{c} = lane + S * ({first} + {c}u);"));
        }
    }

    /// `a{c} = b{c} + Σ_i e{i}·w{i}_{c}`.
    fn dot_columns(&mut self, cols: usize) {
        for c in 0..cols {
            self.line(&format!("        var a{c} = b{c};"));
        }
        for i in 0..self.hp {
            for c in 0..cols {
                self.line(&format!("        a{c} = a{c} + e{i} * w{i}_{c};"));
            }
        }
    }

    /// The common head of a layer that reads hidden layer `prev` (index expression).
    fn layer_head(&mut self, name: &str, layer: &str, prev: &str, extra: &str, ret: &str) {
        self.line(&format!(
            "fn {name}(lane: u32, r0: u32, nrows: u32{extra}){ret} {{"
        ));
        self.line(&format!("    let layer = net.l[{layer}];"));
        self.line(&format!("    let prev = net.l[{prev}];"));
        self.line(&format!("    let pa = fused_act_param({prev});"));
        self.line("    let k = layer.fan_in;");
    }

    /// Hidden layer l ≥ 1, forward: Z_l = f(Z_{l−1})·W_l + b_l, in NG groups of G columns
    /// per lane (a loop, so the unrolled body stays the size of one group).
    fn fwd_hidden(&mut self) {
        let (ch, g) = (self.ch, self.group);
        self.layer_head("fwd_hidden", "l", "l - 1u", ", l: u32", "");
        self.line("    let n = layer.fan_out;");
        self.line(&format!("    for (var g = 0u; g < {}u; g++) {{", ch / g));
        self.columns(g, &format!("g * {g}u"), "    ");
        self.weights_by_column(g, "n");
        self.biases(g, "n");
        self.row_loop();
        self.load("z", "(l - 1u) * CH4", (0, ch));
        self.act("fused_act", "z", "x", (0, ch), true);
        self.share("x", "e", (0, ch), self.hp);
        self.dot_columns(g);
        self.store("a", &format!("l * CH4 + g * {}u", g.div_ceil(4)), g);
        self.line("    }");
        self.line("    }");
        self.line("}");
    }

    /// The output layer, forward, then the loss and dL/dZ (into the row store).
    fn fwd_output(&mut self) {
        let (ch, co) = (self.ch, self.co);
        self.out
            .push_str("// Returns (Σ loss, correct) over the chunk.\n");
        self.layer_head("fwd_output", "NH", "NH - 1u", "", " -> vec2<f32>");
        self.columns(co, "0u", "    ");
        self.weights_by_column(co, "O");
        self.biases(co, "O");
        self.line("    let want_loss = (dims.flags & (FLAG_LOSS | FLAG_GRADS)) != 0u;");
        self.line("    let has_targets = (dims.flags & FLAG_TARGETS) != 0u;");
        self.line("    var loss_sum = 0.0;");
        self.line("    var correct = 0.0;");
        self.row_loop();
        self.line("        let row = r0 + r;");
        self.load("z", "(NH - 1u) * CH4", (0, ch));
        self.act("fused_act", "z", "x", (0, ch), true);
        self.share("x", "e", (0, ch), self.hp);
        self.dot_columns(co);
        self.line("        if (dims.flags & FLAG_OUTPUTS) != 0u {");
        for c in 0..co {
            self.line(&format!(
                "            if jc{c} < O {{ outputs[row * O + jc{c}] = a{c}; }}"
            ));
        }
        self.line("        }");
        self.line("        if want_loss {");
        self.loss(co);
        self.store("d", "OUT4", co);
        self.line("        }");
        self.line("    }");
        self.line("    return vec2<f32>(loss_sum, correct);");
        self.line("}");
    }

    /// The loss of one row from the logits `a{c}`: adds to `loss_sum` and `correct` and
    /// defines `d{c}` = dL/dZ (a mean over the batch, as loss.wgsl).
    fn loss(&mut self, co: usize) {
        let lanes = self.lanes;
        let i = "        ";
        for c in 0..co {
            self.line(&format!("{i}let j{c} = lane + {}u;", lanes * c));
            self.line(&format!("{i}let v{c} = j{c} < O;"));
        }
        self.line(&format!(
            "{i}let label = select(labels[row], 0u, has_targets);"
        ));
        // The largest logit and the first index holding it (NaN never wins).
        self.line(&format!("{i}var mx = bitcast<f32>(0xff800000u);"));
        for c in 0..co {
            self.line(&format!("{i}if v{c} && a{c} > mx {{ mx = a{c}; }}"));
        }
        self.reduce("Max", "mx", "m", i);
        self.line(&format!("{i}var am = 3.0e38;"));
        for c in 0..co {
            self.line(&format!(
                "{i}if v{c} && a{c} == m {{ am = min(am, f32(j{c})); }}"
            ));
        }
        self.reduce("Min", "am", "arg", i);
        self.line(&format!(
            "{i}correct += select(select(0.0, 1.0, arg == f32(label)), 0.0, has_targets);"
        ));
        for c in 0..co {
            self.line(&format!("{i}var d{c} = 0.0;"));
        }
        self.line(&format!("{i}if dims.loss_kind == LOSS_CE {{"));
        self.line(&format!("{i}var se = 0.0;"));
        self.line(&format!("{i}var zl = 0.0;"));
        for c in 0..co {
            self.line(&format!("{i}let x{c} = select(0.0, exp(a{c} - m), v{c});"));
            self.line(&format!("{i}se += x{c};"));
            self.line(&format!("{i}if j{c} == label {{ zl = a{c}; }}"));
        }
        self.reduce("Add", "se", "sum_e", i);
        self.reduce("Add", "zl", "z_label", i);
        self.line(&format!("{i}loss_sum += m + log(sum_e) - z_label;"));
        self.line(&format!("{i}let inv_s = 1.0 / sum_e;"));
        for c in 0..co {
            self.line(&format!(
                "{i}d{c} = select(0.0, (x{c} * inv_s - select(0.0, 1.0, j{c} == label)) * dims.inv_batch, v{c});"
            ));
        }
        self.line(&format!("{i}}} else {{"));
        self.line(&format!("{i}var sq = 0.0;"));
        for c in 0..co {
            self.line(&format!("{i}var t{c} = select(0.0, 1.0, j{c} == label);"));
            self.line(&format!(
                "{i}if has_targets && v{c} {{ t{c} = targets[row * O + j{c}]; }}"
            ));
            self.line(&format!("{i}let diff{c} = select(0.0, a{c} - t{c}, v{c});"));
            self.line(&format!("{i}sq += diff{c} * diff{c};"));
            self.line(&format!(
                "{i}d{c} = 2.0 * diff{c} * dims.inv_batch / f32(O);"
            ));
        }
        self.reduce("Add", "sq", "sum_sq", i);
        self.line(&format!("{i}loss_sum += sum_sq / f32(O);"));
        self.line(&format!("{i}}}"));
    }

    fn main(&mut self) {
        let lane = match self.s.exchange {
            Exchange::Subgroup => "subgroup_invocation_id",
            Exchange::Workgroup => "local_invocation_index",
        };
        let hidden = self.s.hidden_layers > 1;
        self.line("@compute @workgroup_size(S)");
        self.line(&format!(
            "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin({lane}) lane: u32) {{"
        ));
        self.line("    let slot = wid.y * nwg.x + wid.x;");
        self.line("    if slot >= dims.slots {");
        self.line("        return;");
        self.line("    }");
        self.line("    let pbase = slot * dims.stride;");
        self.line("    let trash = pbase + dims.metrics_at + 4u + lane;");
        self.line("    let r0 = slot * dims.chunk_rows;");
        self.line("    let nrows = min(dims.chunk_rows, dims.batch - r0);");
        self.line("    fwd_input(lane, r0, nrows);");
        if hidden {
            self.line("    for (var l = 1u; l < NH; l++) {");
            self.line("        fwd_hidden(lane, r0, nrows, l);");
            self.line("    }");
        }
        self.line("    let m = fwd_output(lane, r0, nrows);");
        self.line("    if (dims.flags & FLAG_GRADS) != 0u {");
        self.line("        bwd_output(lane, r0, nrows, pbase, trash);");
        if hidden {
            self.line("        for (var l = NH - 1u; l > 0u; l--) {");
            self.line("            bwd_hidden(lane, r0, nrows, pbase, trash, l);");
            self.line("        }");
        }
        self.line("        bwd_input(lane, r0, nrows, pbase, trash);");
        self.line("    }");
        self.line("    if lane == 0u && (dims.flags & (FLAG_LOSS | FLAG_GRADS)) != 0u {");
        self.line("        let at = pbase + dims.metrics_at;");
        self.line("        partials[at] = m.x;");
        self.line("        partials[at + 1u] = m.y;");
        self.line("        partials[at + 2u] = f32(nrows);");
        self.line("    }");
        self.line("}");
    }
}
