//! Every WGSL file validates with naga on its own and as the host composes it; workgroup
//! memory fits the 16 KiB every adapter offers; a broken shader is a readable error.

mod common;

use wgmlp::Error;
use wgmlp::gpu::kernels::{Kernel, SHADER_FILES, validate_wgsl, workgroup_bytes};

#[test]
fn each_shader_file_validates_on_its_own_or_with_the_snippets_its_header_names() {
    use wgmlp::gpu::kernels::{ACTIVATIONS_WGSL, STRUCTS_WGSL};
    for (name, src) in SHADER_FILES {
        if validate_wgsl(name, src).is_ok() {
            continue;
        }
        // A file that is not valid alone says which snippets the host prepends.
        let mut composed = String::new();
        if src.contains("structs.wgsl") && src.contains("prepended") {
            composed += STRUCTS_WGSL;
        }
        if src.contains("activations.wgsl prepended") {
            composed += ACTIVATIONS_WGSL;
        }
        assert!(
            !composed.is_empty(),
            "{name} is invalid alone and names no snippet"
        );
        composed += src;
        validate_wgsl(name, &composed).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn every_kernel_source_validates_and_fits_16_kib_of_workgroup_memory() {
    for &k in Kernel::ALL {
        let module = validate_wgsl(k.name(), &k.source()).unwrap();
        let bytes = workgroup_bytes(&module);
        assert!(
            bytes <= 16384,
            "{}: {bytes} bytes of workgroup memory",
            k.name()
        );
        assert!(
            module.entry_points.iter().any(|e| e.name == k.entry()),
            "{}: no entry point {}",
            k.name(),
            k.entry()
        );
    }
}

#[test]
fn every_kernel_compiles_into_a_pipeline_on_the_adapter() {
    let ctx = common::gpu();
    for &k in Kernel::ALL {
        if k.needs_subgroups() && !ctx.features.contains(wgpu::Features::SUBGROUP) {
            eprintln!(
                "{}: needs SUBGROUP, which this adapter lacks: not built",
                k.name()
            );
            continue;
        }
        let key = if k.uses_activation() {
            wgmlp::gpu::PipelineKey::with_activation(k, wgmlp::Activation::Relu)
        } else {
            wgmlp::gpu::PipelineKey::new(k)
        };
        ctx.pipeline(&key).unwrap_or_else(|e| panic!("{e}"));
    }
    let before = ctx.pipeline_count();
    ctx.pipeline(&wgmlp::gpu::PipelineKey::new(Kernel::Copy))
        .unwrap();
    assert_eq!(ctx.pipeline_count(), before, "pipelines are cached");
}

#[test]
fn a_broken_shader_is_a_readable_error_not_a_panic() {
    let src = "fn f() -> f32 {\n    return 1.0 +;\n}\n";
    let err = validate_wgsl("broken.wgsl", src).unwrap_err();
    assert!(
        matches!(err, Error::Shader { stage: "parse", .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("broken.wgsl") && text.contains("return 1.0 +"),
        "{text}"
    );

    let src = "fn f() -> f32 {\n    return 1u;\n}\n";
    let err = validate_wgsl("mistyped.wgsl", src).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Shader {
                stage: "validate",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("mistyped.wgsl"), "{err}");
}
