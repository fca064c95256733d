//! The backward half of the generated kernel: weight gradients, input gradients and the
//! backward functions of the input, hidden and output layers.

use super::{ACCUMULATORS, Gen};

impl Gen<'_> {
    /// dW = Xᵀ·dZ and db = Σ dZ of a layer whose input is hidden layer `prev_at`, summed over
    /// the chunk into the slot's partials; `cols` slots of dZ at `dz_at`, output width `n`.
    /// The rows of dW are done in blocks of `block` slots (at most ACCUMULATORS registers),
    /// each a pass over the chunk; the blocks are a loop when there are several.
    fn grad_weights(&mut self, cols: usize, n: &str, dz_at: &str, prev_at: &str) {
        let (ch, lanes) = (self.ch, self.lanes);
        let block = (ACCUMULATORS / (cols * lanes)).clamp(1, ch);
        let blocks = ch.div_ceil(block);
        self.columns(cols, "0u", "    ");
        for c in 0..cols {
            self.line(&format!("    var gb{c} = 0.0;"));
        }
        self.row_loop();
        self.load("d", dz_at, (0, cols));
        for c in 0..cols {
            self.line(&format!("        gb{c} = gb{c} + d{c};"));
        }
        self.line("    }");
        for c in 0..cols {
            self.line(&format!(
                "    fused_store(pbase + layer.b_offset + jc{c}, trash, gb{c}, jc{c} < {n});"
            ));
        }
        self.line(&format!("    for (var ib = 0u; ib < {blocks}u; ib++) {{"));
        self.line(&format!("    let m0 = ib * {block}u;"));
        let rows = block * lanes;
        for q in 0..rows {
            for c in 0..cols {
                self.line(&format!("    var g{q}_{c} = 0.0;"));
            }
        }
        self.row_loop();
        self.load("d", dz_at, (0, cols));
        // The block's slots m0 + t of the previous layer (a run-time slot when blocks > 1).
        for t in 0..block {
            if blocks == 1 {
                self.line(&format!(
                    "        let z{t} = rows[rb + {prev_at} + {}u][{}u];",
                    t / 4,
                    t % 4
                ));
            } else {
                self.line(&format!(
                    "        let z{t} = rows[rb + {prev_at} + (m0 + {t}u) / 4u][(m0 + {t}u) % 4u];"
                ));
            }
        }
        self.act("fused_act", "z", "x", (0, block), true);
        self.share("x", "e", (0, block), rows);
        for q in 0..rows {
            for c in 0..cols {
                self.line(&format!("        g{q}_{c} = g{q}_{c} + e{q} * d{c};"));
            }
        }
        self.line("    }");
        for q in 0..rows {
            let i = format!("(m0 * S + {q}u)");
            for c in 0..cols {
                self.line(&format!(
                    "    fused_store(pbase + layer.w_offset + {i} * {n} + jc{c}, trash, g{q}_{c}, {i} < k && jc{c} < {n});"
                ));
            }
        }
        self.line("    }");
    }

    /// dZ_prev = (dZ·Wᵀ) ⊙ f'(Z_prev), over the previous layer's pre-activations in the row
    /// store, and the gradient of its learned α; `cols` slots of dZ (`count` values). The
    /// lane's rows of W (slots of dZ_prev) go in groups of `group` slots, a loop when several.
    fn grad_input(&mut self, cols: usize, count: usize, n: &str, dz_at: &str, prev_at: &str) {
        let ch = self.ch;
        let group = if ch * count <= ACCUMULATORS * 4 {
            ch
        } else {
            4
        };
        let groups = ch / group;
        self.line("    var ga = 0.0;");
        self.line(&format!("    for (var mg = 0u; mg < {groups}u; mg++) {{"));
        for m in 0..group {
            self.line(&format!(
                "    let im{m} = lane + S * (mg * {group}u + {m}u);"
            ));
            for j in 0..count {
                self.line(&format!(
                    "    let u{m}_{j} = fused_param(layer.w_offset + im{m} * {n} + {j}u, im{m} < k && {j}u < {n});"
                ));
            }
        }
        let at = format!("{prev_at} + mg * {}u", group.div_ceil(4));
        self.row_loop();
        self.load("d", dz_at, (0, cols));
        self.share("d", "dj", (0, cols), count);
        self.load("z", &at, (0, group));
        self.act("fused_act_grad", "z", "g", (0, group), true);
        for m in 0..group {
            self.line(&format!("        var y{m} = 0.0;"));
        }
        for j in 0..count {
            for m in 0..group {
                self.line(&format!("        y{m} = y{m} + u{m}_{j} * dj{j};"));
            }
        }
        for m in 0..group {
            self.line(&format!("        let p{m} = y{m} * g{m};"));
        }
        self.store("p", &at, group);
        self.line("        if prev.learned != 0u {");
        self.act("fused_act_dparam", "z", "h", (0, group), false);
        for m in 0..group {
            self.line(&format!("        ga += y{m} * h{m};"));
        }
        self.line("        }");
        self.line("    }");
        self.line("    }");
        self.line("    if prev.learned != 0u {");
        self.reduce("Add", "ga", "ga_sum", "        ");
        self.line("        fused_store(pbase + prev.alpha_offset, trash, ga_sum, lane == 0u);");
        self.line("    }");
    }

    /// The output layer, backward.
    pub(super) fn bwd_output(&mut self) {
        let co = self.co;
        self.layer_head(
            "bwd_output",
            "NH",
            "NH - 1u",
            ", pbase: u32, trash: u32",
            "",
        );
        self.grad_weights(co, "O", "OUT4", "(NH - 1u) * CH4");
        let count = (self.s.output as usize).min(co * self.lanes);
        self.grad_input(co, count, "O", "OUT4", "(NH - 1u) * CH4");
        self.line("}");
    }

    /// Hidden layer l ≥ 1, backward.
    pub(super) fn bwd_hidden(&mut self) {
        let ch = self.ch;
        self.layer_head(
            "bwd_hidden",
            "l",
            "l - 1u",
            ", pbase: u32, trash: u32, l: u32",
            "",
        );
        self.line("    let n = layer.fan_out;");
        self.grad_weights(ch, "n", "l * CH4", "(l - 1u) * CH4");
        self.grad_input(ch, self.hp, "n", "l * CH4", "(l - 1u) * CH4");
        self.line("}");
    }

    /// Layer 0, backward: db0 and dW0 = Xᵀ·dZ0, the input streamed in blocks.
    pub(super) fn bwd_input(&mut self) {
        let ch = self.ch;
        self.line("fn bwd_input(lane: u32, r0: u32, nrows: u32, pbase: u32, trash: u32) {");
        self.line("    let layer = net.l[0];");
        self.line("    let n = layer.fan_out;");
        self.columns(ch, "0u", "    ");
        for c in 0..ch {
            self.line(&format!("    var gb{c} = 0.0;"));
        }
        self.row_loop();
        self.load("d", "0u", (0, ch));
        for c in 0..ch {
            self.line(&format!("        gb{c} = gb{c} + d{c};"));
        }
        self.line("    }");
        for c in 0..ch {
            self.line(&format!(
                "    fused_store(pbase + layer.b_offset + jc{c}, trash, gb{c}, jc{c} < n);"
            ));
        }
        self.line("    for (var blk = 0u; blk < NB; blk++) {");
        self.line("    let i0 = blk * KB;");
        for q in 0..self.kb_used {
            for c in 0..ch {
                self.line(&format!("    var g{q}_{c} = 0.0;"));
            }
        }
        self.row_loop();
        self.inputs();
        self.share("x", "e", (0, self.mb), self.kb_used);
        self.load("d", "0u", (0, ch));
        for q in 0..self.kb_used {
            for c in 0..ch {
                self.line(&format!("        g{q}_{c} = g{q}_{c} + e{q} * d{c};"));
            }
        }
        self.line("    }");
        for q in 0..self.kb_used {
            for c in 0..ch {
                self.line(&format!(
                    "    fused_store(pbase + layer.w_offset + (i0 + {q}u) * n + jc{c}, trash, g{q}_{c}, i0 + {q}u < K0 && jc{c} < n);"
                ));
            }
        }
        self.line("    }");
        self.line("}");
    }
}
