//! What `wgmlp bench` measures and how often: the full run and the quick one.

use crate::activation::Activation;
use crate::gpu::layer::Shape;

/// A model shape for the training benchmark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelShape {
    /// Input width.
    pub input: usize,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Classes.
    pub output: usize,
}

impl ModelShape {
    /// `input → hidden… → output`.
    pub fn new(input: usize, hidden: &[usize], output: usize) -> Self {
        ModelShape {
            input,
            hidden: hidden.to_vec(),
            output,
        }
    }

    /// `784-256-10`.
    pub fn name(&self) -> String {
        std::iter::once(self.input)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(self.output))
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// A training benchmark: a model, how many samples each engine trains per epoch, and epochs.
#[derive(Clone, Debug)]
pub struct TrainCase {
    /// The model.
    pub model: ModelShape,
    /// Samples per GPU epoch.
    pub gpu_samples: usize,
    /// Timed GPU epochs (after one warm-up epoch).
    pub gpu_epochs: usize,
    /// Samples per CPU epoch (the CPU reference is slow: a few steps).
    pub cpu_samples: usize,
    /// Timed CPU epochs.
    pub cpu_epochs: usize,
}

/// What to measure and how often.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// A shorter run (fewer floats, runs and steps).
    pub quick: bool,
    /// Runs per figure (after one warm-up).
    pub runs: usize,
    /// Floats per activation buffer.
    pub elementwise_len: usize,
    /// Layer shapes (batch, fan_in, fan_out) and the runs for each.
    pub layers: Vec<(Shape, usize)>,
    /// The activation of the layer benchmarks.
    pub layer_activation: Activation,
    /// Training benchmarks.
    pub train: Vec<TrainCase>,
    /// Samples per step in the training benchmarks.
    pub batch_size: usize,
    /// Tiny dispatches in one pass for the per-dispatch cost.
    pub tiny_dispatches: usize,
    /// Submits timed for the per-submit cost.
    pub submits: usize,
    /// Steps per epoch of the tiny model (2-16-16-2, batch 64).
    pub tiny_steps: usize,
}

fn shape(batch: usize, fan_in: usize, fan_out: usize) -> Shape {
    Shape {
        batch,
        fan_in,
        fan_out,
    }
}

impl BenchOptions {
    /// The full run: 16M floats, the three layer shapes, a few epochs per model.
    pub fn full() -> Self {
        BenchOptions {
            quick: false,
            runs: 7,
            elementwise_len: 16 << 20,
            layers: vec![
                (shape(256, 784, 256), 7),
                (shape(256, 256, 10), 7),
                (shape(1024, 1024, 1024), 3),
            ],
            layer_activation: Activation::Relu,
            train: vec![
                TrainCase {
                    model: ModelShape::new(784, &[256], 10),
                    gpu_samples: 4096,
                    gpu_epochs: 3,
                    cpu_samples: 1024,
                    cpu_epochs: 3,
                },
                TrainCase {
                    model: ModelShape::new(784, &[512, 512, 512], 10),
                    gpu_samples: 2048,
                    gpu_epochs: 3,
                    cpu_samples: 512,
                    cpu_epochs: 2,
                },
            ],
            batch_size: 256,
            tiny_dispatches: 1000,
            submits: 50,
            tiny_steps: 256,
        }
    }

    /// A run of well under two minutes on a 2-core software adapter: 1M floats, fewer runs
    /// and steps, and no 1024³ layer (about 20 s per run there).
    pub fn quick() -> Self {
        BenchOptions {
            quick: true,
            runs: 5,
            elementwise_len: 1 << 20,
            layers: vec![(shape(256, 784, 256), 5), (shape(256, 256, 10), 5)],
            train: vec![
                TrainCase {
                    model: ModelShape::new(784, &[256], 10),
                    gpu_samples: 1024,
                    gpu_epochs: 3,
                    cpu_samples: 512,
                    cpu_epochs: 2,
                },
                TrainCase {
                    model: ModelShape::new(784, &[512, 512, 512], 10),
                    gpu_samples: 512,
                    gpu_epochs: 3,
                    cpu_samples: 256,
                    cpu_epochs: 2,
                },
            ],
            tiny_dispatches: 300,
            submits: 20,
            tiny_steps: 64,
            ..Self::full()
        }
    }

    /// Adds the 4096³ layer, for hardware GPUs (the fp32 BLAS comparison; far too slow on a
    /// software adapter).
    pub fn with_large_layer(mut self) -> Self {
        self.layers.push((shape(4096, 4096, 4096), 5));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_shape_names_every_width() {
        assert_eq!(ModelShape::new(784, &[256], 10).name(), "784-256-10");
        assert_eq!(ModelShape::new(2, &[], 2).name(), "2-2");
    }

    #[test]
    fn quick_options_are_a_subset_of_the_full_run() {
        let (q, f) = (BenchOptions::quick(), BenchOptions::full());
        assert!(q.quick && !f.quick);
        assert!(q.elementwise_len < f.elementwise_len);
        assert!(q.runs >= 3 && f.runs >= q.runs);
        for (a, b) in q.train.iter().zip(&f.train) {
            assert_eq!(a.model, b.model);
            assert!(a.cpu_samples >= 256 && a.gpu_samples <= b.gpu_samples);
        }
    }
}
