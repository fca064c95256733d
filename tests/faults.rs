//! GPU faults are typed errors at the operation that caused them, naming the adapter and a
//! hint, never a panic or a hang.

use wgmlp::{Error, GpuContext, GpuFault, GpuMlp, MlpConfig, OptimizerConfig};

fn context() -> GpuContext {
    let ctx = GpuContext::new().unwrap_or_else(|e| {
        panic!(
            "GPU tests need an adapter: {e}\nhint: {}",
            wgmlp::gpu::NO_ADAPTER_HINT
        )
    });
    eprintln!("[adapter] {}", ctx.adapter_summary());
    ctx
}

fn expect_fault(result: Result<(), Error>, kind: GpuFault, ctx: &GpuContext) -> String {
    match result {
        Err(e @ Error::Gpu { .. }) => {
            let Error::Gpu {
                kind: got, adapter, ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(*got, kind, "{e}");
            assert_eq!(adapter, &ctx.info.name, "{e}");
            e.to_string()
        }
        other => panic!("expected a {kind} error, got {other:?}"),
    }
}

/// A bind group whose buffer lacks the STORAGE usage is a wgpu validation error outside any
/// error scope: it is recorded and returned by the next check, with its kind and a hint.
#[test]
fn a_validation_error_is_a_typed_error_with_the_adapter_and_a_hint() {
    let ctx = context();
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("not storage"),
        size: 64,
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let kernel = wgmlp::gpu::Kernel::Copy;
    let _group = ctx.bind_group(kernel, &[(0, &buffer), (1, &buffer), (2, &buffer)]);
    let text = expect_fault(ctx.check("binding"), GpuFault::Validation, &ctx);
    assert!(
        text.contains("binding") && text.contains("report it"),
        "{text}"
    );
    // The error is reported once, then the context is usable again.
    ctx.check("after").unwrap();
}

/// A destroyed device is a lost device: the next wait or readback says so instead of hanging.
#[test]
fn a_lost_device_is_a_typed_error_not_a_hang() {
    let ctx = context();
    let config = MlpConfig::new(4, &[8], 3);
    let mlp = GpuMlp::new(&ctx, &config, OptimizerConfig::sgd(0.1), 4).unwrap();
    ctx.device.destroy();
    let err = mlp.params().map(|_| ()).err();
    let err = match err {
        Some(e) => e,
        None => ctx
            .wait("after destroy")
            .expect_err("a destroyed device fails"),
    };
    assert!(matches!(err, Error::Gpu { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&ctx.info.name), "{text}");
}

/// A wait that cannot finish in time is a timeout error naming the operation. Whether real
/// work outlasts a timeout depends on the machine, so the mapping is checked directly and the
/// real wait is checked not to hang and, when it fails, to fail with that kind.
#[test]
fn a_wait_past_its_timeout_is_a_timeout_error() {
    let mut ctx = context();
    let text = expect_fault(
        Err(ctx.timed_out_wait_error("training epoch")),
        GpuFault::Timeout,
        &ctx,
    );
    assert!(
        text.contains("training epoch") && text.contains("did not finish"),
        "{text}"
    );
    let config = MlpConfig::new(64, &[256, 256], 10);
    // Built (and its cores tuned) under the normal timeout; the product below is not.
    drop(GpuMlp::new(&ctx, &config, OptimizerConfig::sgd(0.1), 1024).unwrap());
    ctx.get_mut().unwrap().wait_timeout = std::time::Duration::ZERO;
    let mut mlp = GpuMlp::new(&ctx, &config, OptimizerConfig::sgd(0.1), 1024).unwrap();
    let x = vec![0.5f32; 64 * 1024];
    match mlp.forward(&x, 1024) {
        Err(e) => {
            expect_fault(Err(e), GpuFault::Timeout, &ctx);
        }
        Ok(y) => assert_eq!(y.len(), 1024 * 10, "finished before the zero timeout"),
    }
}
