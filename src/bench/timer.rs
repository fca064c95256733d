//! Timing of GPU work: timestamp queries where the adapter has them, wall clock otherwise.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::gpu::GpuContext;

/// How a [`Timer`] measures GPU work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// GPU timestamp queries at the start and end of the work (`TIMESTAMP_QUERY`).
    Timestamps,
    /// Wall clock around submit + wait (includes the submit and wake-up costs).
    Wall,
}

impl Clock {
    /// A short name for tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Clock::Timestamps => "timestamp queries",
            Clock::Wall => "wall clock (submit + wait)",
        }
    }
}

/// The query set and buffers of the timestamp path.
struct Stamps {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
    /// `TIMESTAMP_QUERY_INSIDE_ENCODERS`: timestamps around copies, not only passes.
    in_encoders: bool,
}

/// Times compute passes and encoder commands on one context; create once, reuse.
pub struct Timer<'c> {
    ctx: &'c GpuContext,
    stamps: Option<Stamps>,
}

impl<'c> Timer<'c> {
    /// Uses timestamp queries when the device was created with `TIMESTAMP_QUERY`.
    pub fn new(ctx: &'c GpuContext) -> Self {
        Self::with_clock(
            ctx,
            if ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
                Clock::Timestamps
            } else {
                Clock::Wall
            },
        )
    }

    /// Forces a clock (`Clock::Timestamps` falls back to the wall clock without the feature).
    pub fn with_clock(ctx: &'c GpuContext, clock: Clock) -> Self {
        let available = ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY);
        let stamps = (clock == Clock::Timestamps && available).then(|| {
            let buffer = |label, usage| {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: 16,
                    usage,
                    mapped_at_creation: false,
                })
            };
            Stamps {
                set: ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("bench.timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                }),
                resolve: buffer(
                    "bench.timestamps.resolve",
                    wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                ),
                readback: buffer(
                    "bench.timestamps.readback",
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                ),
                period_ns: ctx.queue.get_timestamp_period() as f64,
                in_encoders: ctx
                    .features
                    .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS),
            }
        });
        Timer { ctx, stamps }
    }

    /// The clock [`Timer::time_pass`] uses.
    pub fn clock(&self) -> Clock {
        if self.stamps.is_some() {
            Clock::Timestamps
        } else {
            Clock::Wall
        }
    }

    /// The clock [`Timer::time_encoder`] uses (timestamps need `TIMESTAMP_QUERY_INSIDE_ENCODERS`).
    pub fn encoder_clock(&self) -> Clock {
        match &self.stamps {
            Some(s) if s.in_encoders => Clock::Timestamps,
            _ => Clock::Wall,
        }
    }

    /// Seconds the GPU spends on the dispatches `record` puts into one compute pass.
    pub fn time_pass(&self, record: impl FnOnce(&mut wgpu::ComputePass<'_>)) -> Result<f64> {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        {
            let writes = self
                .stamps
                .as_ref()
                .map(|s| wgpu::ComputePassTimestampWrites {
                    query_set: &s.set,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                });
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("bench"),
                timestamp_writes: writes,
            });
            record(&mut pass);
        }
        self.finish(enc, self.stamps.is_some())
    }

    /// Seconds the GPU spends on the commands `record` puts into an encoder (copies, several
    /// passes); wall clock unless timestamps may be written inside encoders.
    pub fn time_encoder(&self, record: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<f64> {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        let stamped = self.encoder_clock() == Clock::Timestamps;
        if let (true, Some(s)) = (stamped, &self.stamps) {
            enc.write_timestamp(&s.set, 0);
            record(&mut enc);
            enc.write_timestamp(&s.set, 1);
        } else {
            record(&mut enc);
        }
        self.finish(enc, stamped)
    }

    /// Submits, waits, and returns the timestamp interval, or the wall-clock time of submit +
    /// wait when there are no timestamps (or they are unusable: a zero or negative interval).
    fn finish(&self, mut enc: wgpu::CommandEncoder, stamped: bool) -> Result<f64> {
        let stamps = self.stamps.as_ref().filter(|_| stamped);
        if let Some(s) = stamps {
            enc.resolve_query_set(&s.set, 0..2, &s.resolve, 0);
            enc.copy_buffer_to_buffer(&s.resolve, 0, &s.readback, 0, 16);
        }
        let command = enc.finish();
        let start = Instant::now();
        self.ctx.queue.submit([command]);
        let Some(s) = stamps else {
            self.ctx.wait("benchmark")?;
            let wall = start.elapsed().as_secs_f64();
            self.ctx.check("benchmark")?;
            return Ok(wall);
        };
        // map_async registers the request; the wait drives the queue until the copy is done
        // and the callback has run; then the range can be read, and unmap releases it.
        let (tx, rx) = std::sync::mpsc::channel();
        s.readback.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.ctx.wait("benchmark")?;
        let wall = start.elapsed().as_secs_f64();
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::gpu("timestamp readback", e)),
            Err(_) => return Err(Error::gpu("timestamp readback", "map callback never ran")),
        }
        let ticks: [u64; 2] = {
            let view = s
                .readback
                .get_mapped_range(..)
                .map_err(|e| Error::gpu("timestamp readback", e))?;
            let t: &[u64] = bytemuck::cast_slice(&view);
            [t[0], t[1]]
        };
        s.readback.unmap();
        self.ctx.check("benchmark")?;
        Ok(interval_seconds(ticks, s.period_ns).unwrap_or(wall))
    }

    /// Wall-clock seconds of submit + wait for the commands `record` puts into an encoder
    /// (recording itself is not timed).
    pub fn time_submit(&self, record: impl FnOnce(&mut wgpu::CommandEncoder)) -> Result<f64> {
        let mut enc = self.ctx.device.create_command_encoder(&Default::default());
        record(&mut enc);
        self.finish(enc, false)
    }
}

/// Seconds between two timestamps, or `None` when the interval is not positive (a driver
/// that does not really count, or a wrapped counter).
pub fn interval_seconds(ticks: [u64; 2], period_ns: f64) -> Option<f64> {
    (ticks[1] > ticks[0] && period_ns > 0.0)
        .then(|| (ticks[1] - ticks[0]) as f64 * period_ns * 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_interval_scales_by_the_period_and_rejects_backwards_ticks() {
        let close =
            |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() <= 1e-12 * want);
        assert!(close(interval_seconds([1_000, 3_000], 1.0), 2e-6));
        assert!(close(interval_seconds([0, 10], 2.5), 25e-9));
        assert_eq!(interval_seconds([5, 5], 1.0), None);
        assert_eq!(interval_seconds([9, 5], 1.0), None);
        assert_eq!(interval_seconds([1, 5], 0.0), None);
    }
}
