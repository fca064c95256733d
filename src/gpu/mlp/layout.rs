//! Where a model's parameters live on the GPU: the host layout ([`MlpConfig::layers`], the
//! layout of checkpoints and of the CPU reference) with every W and b starting at a multiple of
//! 4 floats and the output layer's columns padded to a multiple of 4, so the vec4 cores can run
//! every layer whose width allows it and always the output layer (10 classes would otherwise
//! leave it on the scalar core). Only the output layer is padded: a padded hidden column would
//! feed act(0) ≠ 0 to the next layer, whose weights for it would then learn. Gaps and padding
//! hold zeros, get zero gradients, and so stay zero under every optimizer.

use crate::config::{Layer, MlpConfig};

/// The device layout of one model.
#[derive(Clone, Debug)]
pub(crate) struct DeviceLayout {
    /// The layers with device offsets (the output layer's fan_out is its padded width).
    pub layers: Vec<Layer>,
    /// Floats in the device parameter buffer.
    pub len: usize,
    host: Vec<Layer>,
    host_len: usize,
}

impl DeviceLayout {
    pub fn of(config: &MlpConfig) -> Self {
        let host = config.layers();
        let last = host.len() - 1;
        let mut cursor: usize = 0;
        let layers = host
            .iter()
            .enumerate()
            .map(|(l, h)| {
                let fan_out = if l == last {
                    h.fan_out.div_ceil(4) * 4
                } else {
                    h.fan_out
                };
                let w_offset = cursor.div_ceil(4) * 4;
                let b_offset = (w_offset + h.fan_in * fan_out).div_ceil(4) * 4;
                let alpha_offset = h.alpha_offset.map(|_| b_offset + fan_out);
                cursor = b_offset + fan_out + usize::from(alpha_offset.is_some());
                Layer {
                    fan_out,
                    w_offset,
                    b_offset,
                    alpha_offset,
                    ..*h
                }
            })
            .collect();
        DeviceLayout {
            layers,
            len: cursor,
            host_len: config.n_params(),
            host,
        }
    }

    /// The output layer's padded width: the row stride of the logits on the GPU.
    pub fn output_stride(&self) -> usize {
        self.layers[self.layers.len() - 1].fan_out
    }

    /// Host-layout values (parameters, gradients, moments) in the device layout.
    pub fn to_device(&self, host: &[f32]) -> Vec<f32> {
        let mut dev = vec![0.0; self.len];
        for (h, d) in self.host.iter().zip(&self.layers) {
            for k in 0..h.fan_in {
                let src = h.w_offset + k * h.fan_out;
                let dst = d.w_offset + k * d.fan_out;
                dev[dst..dst + h.fan_out].copy_from_slice(&host[src..src + h.fan_out]);
            }
            dev[d.b_offset..d.b_offset + h.fan_out]
                .copy_from_slice(&host[h.b_offset..h.b_offset + h.fan_out]);
            if let (Some(ha), Some(da)) = (h.alpha_offset, d.alpha_offset) {
                dev[da] = host[ha];
            }
        }
        dev
    }

    /// Device-layout values back in the host layout.
    pub fn to_host(&self, dev: &[f32]) -> Vec<f32> {
        let mut host = vec![0.0; self.host_len];
        for (h, d) in self.host.iter().zip(&self.layers) {
            for k in 0..h.fan_in {
                let src = d.w_offset + k * d.fan_out;
                let dst = h.w_offset + k * h.fan_out;
                host[dst..dst + h.fan_out].copy_from_slice(&dev[src..src + h.fan_out]);
            }
            host[h.b_offset..h.b_offset + h.fan_out]
                .copy_from_slice(&dev[d.b_offset..d.b_offset + h.fan_out]);
            if let (Some(ha), Some(da)) = (h.alpha_offset, d.alpha_offset) {
                host[ha] = dev[da];
            }
        }
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Activation;

    #[test]
    fn the_output_layer_is_padded_and_every_block_aligned() {
        let config = MlpConfig::new(3, &[5, 6], 10)
            .with_activation(Activation::Prelu { alpha: 0.25 })
            .with_learn_prelu(true);
        let layout = DeviceLayout::of(&config);
        assert_eq!(layout.output_stride(), 12);
        for l in &layout.layers {
            assert_eq!((l.w_offset % 4, l.b_offset % 4), (0, 0), "{l:?}");
        }
        assert_eq!(
            layout.layers[0].fan_out, 5,
            "hidden layers keep their width"
        );
        let host: Vec<f32> = (1..=config.n_params()).map(|v| v as f32).collect();
        let dev = layout.to_device(&host);
        assert_eq!(layout.to_host(&dev), host, "round trip");
        // Everything that is not a host value is zero on the device.
        let nonzero = dev.iter().filter(|&&v| v != 0.0).count();
        assert_eq!(nonzero, host.len());
    }

    #[test]
    fn an_aligned_model_keeps_its_layout_but_the_padded_output() {
        let config = MlpConfig::new(784, &[256], 10);
        let layout = DeviceLayout::of(&config);
        let host = config.layers();
        assert_eq!(layout.layers[0], host[0]);
        assert_eq!(layout.layers[1].w_offset, host[1].w_offset);
        assert_eq!(layout.len, host[1].w_offset + 256 * 12 + 12);
    }
}
