//! The interleaved tile kernels against row-by-row `vec_dot`, on a 1536 x 576
//! matrix (SmolLM2-135M's FFN up/gate shape), single-threaded:
//!
//! * `matvec` (decode, one activation row): bytes of weights per second, to
//!   hold against the memory bandwidth;
//! * `matmul_n128` (prefill, 128 activation rows): multiply-adds per second.
//!
//!     cargo bench -p edgewasm-kernels --bench gemm

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use edgewasm_kernels::gemm::{RepackedMatrix, WeightArena, TILE_ROWS};
use edgewasm_kernels::{active_path, cpu_features, kernels_for, GgmlType};

const ROWS: usize = 1536;
const COLS: usize = 576;
/// The K-quants' 256-element blocks need wider rows: Llama-3.2-1B's
/// attention output shape (2048 x 2048).
const K_ROWS: usize = 2048;
const K_COLS: usize = 2048;

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
    eprintln!("cpu features: {:?}; path {}", cpu_features(), active_path());
    for ty in [
        GgmlType::Q4_1,
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        let (rows, cols) = if ty.block_size() == 256 {
            (K_ROWS, K_COLS)
        } else {
            (ROWS, COLS)
        };
        let k = kernels_for(ty);
        let row_bytes = ty.row_bytes(cols as u64).unwrap() as usize;
        // u64 storage: the block structs need 2-byte alignment.
        let mut wbuf = vec![0u64; (rows * row_bytes).div_ceil(8)];
        let w = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut wbuf)[..rows * row_bytes];
        for (r, out) in w.chunks_exact_mut(row_bytes).enumerate() {
            (k.from_float)(&data(cols, r as u32 + 1), out);
        }
        let w = &*w;
        let rp = RepackedMatrix::new(ty, rows, cols, w).unwrap();
        let vt = kernels_for(k.vec_dot_type);
        let arow = k.vec_dot_type.row_bytes(cols as u64).unwrap() as usize;
        for n in [1usize, 128] {
            let mut abuf = vec![0u64; (n * arow).div_ceil(8)];
            let a = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut abuf)[..n * arow];
            for (i, row) in a.chunks_exact_mut(arow).enumerate() {
                (vt.from_float)(&data(cols, 1000 + i as u32), row);
            }
            let a = &*a;
            let name = if n == 1 { "matvec" } else { "matmul_n128" };
            let mut g = c.benchmark_group(format!("{name}_{}_{}x{}", ty.name(), rows, cols));
            g.throughput(if n == 1 {
                Throughput::Bytes(w.len() as u64)
            } else {
                Throughput::Elements((rows * cols * n) as u64)
            });
            let mut out = vec![0.0f32; rows * n];
            g.bench_function(BenchmarkId::from_parameter("vec_dot_rows"), |b| {
                b.iter(|| {
                    for (r, row) in w.chunks_exact(row_bytes).enumerate() {
                        for c in 0..n {
                            out[c * rows + r] =
                                (k.vec_dot)(cols, row, &a[c * arow..(c + 1) * arow]);
                        }
                    }
                    std::hint::black_box(&out);
                })
            });
            g.bench_function(BenchmarkId::from_parameter("tiles"), |b| {
                b.iter(|| {
                    rp.gemm(0..rows / TILE_ROWS, a, n, &mut out);
                    std::hint::black_box(&out);
                })
            });
            g.finish();
        }
    }
}

/// Decode from memory: a Q4_K and a Q6_K matrix of 128k x 2048 (a 128k
/// vocabulary's output projection, 150-215 MB: far larger than any cache),
/// one activation row, single-threaded. Bytes per second here against the
/// machine's plain read bandwidth (`edgewasm bench --bandwidth`) says whether
/// the tile kernels keep enough memory traffic in flight.
fn bench_streaming(c: &mut Criterion) {
    const BIG_ROWS: usize = 128 * 1024;
    for ty in [GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0] {
        let k = kernels_for(ty);
        let row_bytes = ty.row_bytes(K_COLS as u64).unwrap() as usize;
        let mut wbuf = vec![0u64; (BIG_ROWS * row_bytes).div_ceil(8)];
        let w = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut wbuf)[..BIG_ROWS * row_bytes];
        let row0 = {
            let mut r = vec![0u8; row_bytes];
            (k.from_float)(&data(K_COLS, 7), &mut r);
            r
        };
        // Values don't change speed: one quantized row, repeated.
        for out in w.chunks_exact_mut(row_bytes) {
            out.copy_from_slice(&row0);
        }
        // In a huge-page arena, as the model keeps its weights.
        let arena = WeightArena::new(w.len() + (4 << 20));
        let rp =
            RepackedMatrix::new_releasing(ty, BIG_ROWS, K_COLS, w, arena.as_ref(), |_| {}).unwrap();
        drop(wbuf);
        let vt = kernels_for(k.vec_dot_type);
        let arow = k.vec_dot_type.row_bytes(K_COLS as u64).unwrap() as usize;
        let mut abuf = vec![0u64; arow.div_ceil(8)];
        let a = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut abuf)[..arow];
        (vt.from_float)(&data(K_COLS, 1000), a);
        let a = &*a;
        let mut g = c.benchmark_group(format!(
            "matvec_stream_{}_{}x{}",
            ty.name(),
            BIG_ROWS,
            K_COLS
        ));
        g.throughput(Throughput::Bytes((BIG_ROWS * row_bytes) as u64));
        let mut out = vec![0.0f32; BIG_ROWS];
        g.bench_function(BenchmarkId::from_parameter("tiles"), |b| {
            b.iter(|| {
                rp.gemm(0..BIG_ROWS / TILE_ROWS, a, 1, &mut out);
                std::hint::black_box(&out);
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = bench, bench_streaming
}
criterion_main!(benches);
