//! Weight-streaming throughput of the quantized dots: a 576 x 1536 matrix
//! (SmolLM2-135M's FFN shape; 1536 x 576 for the K-quants, whose rows must be
//! whole 256-element super-blocks) times one activation row, per kernel path.
//! Throughput is reported in bytes of weights per second.
//!
//!     cargo bench -p edgewasm-kernels --bench dot

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use edgewasm_kernels::{available_paths, cpu_features, kernels_for_path, GgmlType, KernelPath};

const ROWS: usize = 1536;
const COLS: usize = 576;

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / 8_388_608.0 - 1.0
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    eprintln!("cpu features: {:?}", cpu_features());
    for ty in [
        GgmlType::Q4_1,
        GgmlType::Q8_0,
        GgmlType::Q5_0,
        GgmlType::Q4_0,
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        // K-quant rows must be whole 256-element super-blocks: transpose.
        let (rows, cols) = if ty.block_size() == 256 {
            (COLS, ROWS)
        } else {
            (ROWS, COLS)
        };
        let scalar = kernels_for_path(ty, KernelPath::Scalar).unwrap();
        let row_bytes = ty.row_bytes(cols as u64).unwrap() as usize;
        let mut w = vec![0u8; rows * row_bytes];
        for (r, out) in w.chunks_exact_mut(row_bytes).enumerate() {
            (scalar.from_float)(&data(cols, r as u32 + 1), out);
        }
        let vt = scalar.vec_dot_type;
        let mut a = vec![0u8; vt.row_bytes(cols as u64).unwrap() as usize];
        (kernels_for_path(vt, KernelPath::Scalar).unwrap().from_float)(&data(cols, 999), &mut a);

        let mut g = c.benchmark_group(format!("matvec_{}_{}x{}", ty.name(), rows, cols));
        g.throughput(Throughput::Bytes(w.len() as u64));
        for path in available_paths() {
            let k = kernels_for_path(ty, path).unwrap();
            g.bench_with_input(BenchmarkId::from_parameter(path), &path, |b, _| {
                b.iter(|| {
                    let mut s = 0.0f32;
                    for row in w.chunks_exact(row_bytes) {
                        s += (k.vec_dot)(cols, row, &a);
                    }
                    std::hint::black_box(s)
                })
            });
        }
        g.finish();
    }

    let x = data(COLS * 8, 5);
    let mut g = c.benchmark_group("from_float_q8_0_4608");
    g.throughput(Throughput::Bytes((x.len() * 4) as u64));
    for path in available_paths() {
        let k = kernels_for_path(GgmlType::Q8_0, path).unwrap();
        let mut out = vec![0u8; GgmlType::Q8_0.row_bytes(x.len() as u64).unwrap() as usize];
        g.bench_with_input(BenchmarkId::from_parameter(path), &path, |b, _| {
            b.iter(|| (k.from_float)(std::hint::black_box(&x), &mut out))
        });
    }
    g.finish();
}

/// The gated delta rule's step (Qwen 3.5: heads of 128), one head and one
/// token per call, per path; throughput in state bytes.
fn delta_rule(c: &mut Criterion) {
    use edgewasm_kernels::recurrent::DeltaToken;
    use edgewasm_kernels::recurrent_kernels_for_path;
    const S: usize = 128;
    let (q, k, v) = (data(S, 1), data(S, 2), data(S, 3));
    let mut state = data(S * S, 4);
    let mut out = vec![0f32; S];
    let t = DeltaToken { q: &q, k: &k, v: &v, decay: 0.97, beta: 0.4, scale: 1.0 / (S as f32).sqrt() };
    let mut g = c.benchmark_group("delta_rule_128");
    g.throughput(Throughput::Bytes((S * S * 4) as u64));
    for path in available_paths() {
        let kr = recurrent_kernels_for_path(path).unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(path), &path, |b, _| b.iter(|| (kr.delta_rule)(&mut state, &t, &mut out)));
    }
    g.finish();
}

/// The attention helpers per path: `exp_sum` of 512 scores, and on f16
/// keys and values one query against 512 keys of 64 and of 128 elements
/// (`scaled_dots`) and the weighted sum of 512 value rows. Elements per
/// second; and a prefill tile through the block kernels.
fn attention(c: &mut Criterion) {
    for path in available_paths() {
        let Some(k) = edgewasm_kernels::attn_kernels_for_path(path) else { continue };
        let scores: Vec<f32> = data(512, 9).into_iter().map(|x| x * 20.0).collect();
        let mut g = c.benchmark_group("attn_exp_sum_n512");
        g.throughput(Throughput::Elements(512));
        g.bench_function(BenchmarkId::from_parameter(path), |b| {
            b.iter_batched_ref(|| scores.clone(), |s| (k.exp_sum)(s, 20.0), criterion::BatchSize::SmallInput)
        });
        g.finish();
        let Some(f16k) = k.f16 else { continue };
        for d in [64usize, 128] {
            let n = 512;
            let q = data(d, 3);
            let keys: Vec<half::f16> = data(n * d, 5).into_iter().map(half::f16::from_f32).collect();
            let w = data(n, 7);
            let mut g = c.benchmark_group(format!("attn_f16_d{d}_n{n}"));
            g.throughput(Throughput::Elements((n * d) as u64));
            let mut s = vec![0f32; n];
            g.bench_function(BenchmarkId::new("scaled_dots", path), |b| {
                b.iter(|| (f16k.scaled_dots)(&q, &keys, 0.125, &mut s))
            });
            let mut out = vec![0f32; d];
            g.bench_function(BenchmarkId::new("weighted_sum", path), |b| {
                b.iter(|| (f16k.weighted_sum)(&w, 1.0, &keys, &mut out))
            });
            g.finish();
        }
        // A prefill tile: 128 queries (32 positions x 4 heads) against 64
        // keys of 64 (f16, widened as they are transposed), then their
        // weighted sums over 64 f32 value rows. Multiply-adds per second.
        let (m, n, d) = (128usize, 64usize, 64usize);
        let (qs, vals, w) = (data(m * d, 11), data(n * d, 13), data(m * n, 15));
        let keys: Vec<half::f16> = data(n * d, 17).into_iter().map(half::f16::from_f32).collect();
        let mut g = c.benchmark_group(format!("attn_block_m{m}_n{n}_d{d}"));
        g.throughput(Throughput::Elements((m * n * d) as u64));
        let (mut s, mut scratch) = (vec![0f32; m * n], Vec::new());
        g.bench_function(BenchmarkId::new("scaled_dots_block_f16", path), |b| {
            b.iter(|| (f16k.scaled_dots_block)(&qs, &keys, d, 0.125, &mut s, &mut scratch))
        });
        let mut out = vec![0f32; m * d];
        g.bench_function(BenchmarkId::new("weighted_sum_block", path), |b| b.iter(|| (k.weighted_sum_block)(&w, n, &vals, &mut out)));
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = bench, delta_rule, attention
}
criterion_main!(benches);
