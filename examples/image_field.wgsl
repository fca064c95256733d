// image_field.wgsl: the batch of the image_field example, built on the GPU.
//
// Row r of the batch is pixel p = order[offset + r] of a width × height RGB image. Its input is
// the pixel centre (u, v) in [-1, 1]² with a frequency (Fourier feature) encoding,
//
//   x = [u, v, sin(2^k π u), cos(2^k π u), sin(2^k π v), cos(2^k π v) for k < freqs],
//
// and its target the pixel's RGB in [0, 1]. One invocation per row.
//
// Bindings (group 0), entry `encode`
//   0 order:   array<u32>  read        pixel indices
//   1 image:   array<f32>  read        [height × width × 3]
//   2 xb:      array<f32>  read_write  [batch × (2 + 4·freqs)]
//   3 targets: array<f32>  read_write  [batch × 3]
//   4 dims:    EncodeDims  uniform

const WG: u32 = 64u;
const PI: f32 = 3.14159265358979;

struct EncodeDims {
    batch: u32,
    offset: u32,
    width: u32,
    height: u32,
    freqs: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> order: array<u32>;
@group(0) @binding(1) var<storage, read> image: array<f32>;
@group(0) @binding(2) var<storage, read_write> xb: array<f32>;
@group(0) @binding(3) var<storage, read_write> targets: array<f32>;
@group(0) @binding(4) var<uniform> dims: EncodeDims;

@compute @workgroup_size(WG)
fn encode(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let r = (wid.y * nwg.x + wid.x) * WG + lid;
    if r >= dims.batch {
        return;
    }
    let p = order[dims.offset + r];
    let px = p % dims.width;
    let py = p / dims.width;
    let u = (f32(px) + 0.5) / f32(dims.width) * 2.0 - 1.0;
    let v = (f32(py) + 0.5) / f32(dims.height) * 2.0 - 1.0;
    let stride = 2u + 4u * dims.freqs;
    let base = r * stride;
    xb[base] = u;
    xb[base + 1u] = v;
    var f = PI;
    for (var k = 0u; k < dims.freqs; k++) {
        let at = base + 2u + 4u * k;
        xb[at] = sin(f * u);
        xb[at + 1u] = cos(f * u);
        xb[at + 2u] = sin(f * v);
        xb[at + 3u] = cos(f * v);
        f = f * 2.0;
    }
    for (var c = 0u; c < 3u; c++) {
        targets[r * 3u + c] = image[p * 3u + c];
    }
}
