//! The interleaved tile kernels (`gemm`) against the reference `vec_dot`, bit
//! for bit, on every path this CPU has and on the portable scalar tiles.
//!
//! Weights are raw random blocks (every code, including Q8_0's -128 that the
//! quantizer never writes), scales random finite f16; activations come from
//! the scalar quantizer, as in the model, including rows at the ±127 limits.

#[path = "common/paths.rs"]
#[macro_use]
mod paths;

use edgewasm_kernels::gemm::{RepackError, RepackedMatrix, WeightArena, TILE_ROWS};
use edgewasm_kernels::{fp, kernels_for_path, GgmlType, KernelPath};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    fn f(&mut self) -> f32 {
        self.next() as f32 / (1u64 << 31) as f32 * 2.0 - 1.0
    }
}

/// `rows` rows of random `ty` blocks.
fn random_weights(ty: GgmlType, rows: usize, cols: usize, rng: &mut Lcg) -> Vec<u16> {
    let bs = ty.type_size();
    let nb = cols / ty.block_size();
    let mut bytes = vec![0u8; rows * nb * bs];
    for blk in bytes.chunks_mut(bs) {
        for b in blk.iter_mut() {
            *b = rng.next() as u8;
        }
        // d (and m or dmin) finite: scales in ±2^-6..2^-2. They lead the
        // block, but for Q6_K, where `d` is its last two bytes.
        let (first, n_scales) = match ty {
            GgmlType::Q4_1 | GgmlType::Q4_K | GgmlType::Q5_K => (0, 2),
            GgmlType::Q6_K => (bs - 2, 1),
            _ => (0, 1),
        };
        for s in 0..n_scales {
            let v = rng.f() * 0.25;
            let h = fp::fp32_to_fp16_bits(if v.abs() < 1.0 / 64.0 { 0.02 } else { v });
            blk[first + 2 * s..first + 2 * s + 2].copy_from_slice(&h.to_le_bytes());
        }
    }
    bytes.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()
}

fn quantized_acts(ty: GgmlType, n: usize, cols: usize, rng: &mut Lcg) -> Vec<u16> {
    let vt = kernels_for_path(ty, KernelPath::Scalar).unwrap().vec_dot_type;
    let q = kernels_for_path(vt, KernelPath::Scalar).unwrap();
    let row = vt.type_size() * cols / vt.block_size();
    let mut out = vec![0u16; (n * row).div_ceil(2)];
    let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out);
    for c in 0..n {
        let x: Vec<f32> = (0..cols)
            .map(|i| match c % 3 {
                // Saturated blocks: every quant ±127.
                2 => if i % 2 == 0 { 1.0 } else { -1.0 },
                _ => rng.f() * 3.0,
            })
            .collect();
        (q.from_float)(&x, &mut bytes[c * row..(c + 1) * row]);
    }
    out
}

/// The tiles of `path` (`None`: the portable scalar tiles) against the
/// reference `vec_dot`, row by row.
fn check(path: Option<KernelPath>, ty: GgmlType, rows: usize, cols: usize, n: usize, seed: u64) {
    let mut rng = Lcg(seed);
    let w = random_weights(ty, rows, cols, &mut rng);
    let wb: &[u8] = bytemuck::cast_slice(&w);
    let a = quantized_acts(ty, n, cols, &mut rng);
    let vt = kernels_for_path(ty, KernelPath::Scalar).unwrap().vec_dot_type;
    let arow = vt.type_size() * cols / vt.block_size();
    let ab = &bytemuck::cast_slice::<u16, u8>(&a)[..n * arow];
    let reference = kernels_for_path(ty, KernelPath::Scalar).unwrap();
    // Every other case keeps the tiles in a huge-page arena, as models do.
    let arena = if seed % 2 == 1 { WeightArena::new(RepackedMatrix::bytes_for(ty, rows, cols)) } else { None };
    let m = RepackedMatrix::new_releasing(ty, rows, cols, wb, arena.as_ref(), |_| {}).unwrap();
    if let Some(arena) = &arena {
        assert_eq!(arena.used(), m.heap_bytes(), "{ty}: the tiles are in the arena");
    }
    assert_eq!(m.tile_rows(), rows / TILE_ROWS * TILE_ROWS);
    let wrow = ty.type_size() * cols / ty.block_size();
    for r in 0..m.tile_rows() {
        let mut back = vec![0u8; wrow];
        m.copy_row(r, &mut back);
        assert_eq!(back, &wb[r * wrow..(r + 1) * wrow], "{ty}: row {r} round trip");
    }
    {
        let mut out = vec![f32::NAN; m.tiles() * n * TILE_ROWS];
        assert!(m.gemm_on(path, 0..m.tiles(), ab, n, &mut out));
        for t in 0..m.tiles() {
            for c in 0..n {
                for r in 0..TILE_ROWS {
                    let row = t * TILE_ROWS + r;
                    let want = (reference.vec_dot)(
                        cols,
                        &wb[row * wrow..(row + 1) * wrow],
                        &ab[c * arow..(c + 1) * arow],
                    );
                    let got = out[(t * n + c) * TILE_ROWS + r];
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{ty} {path:?} rows {rows} cols {cols} n {n}: row {row} col {c}: {got} != {want}"
                    );
                }
            }
        }
    }
}

const TYPES: [GgmlType; 9] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q8_0,
    GgmlType::IQ4_NL,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::IQ4_XS,
];

fn tiles_equal_vec_dot_on(path: Option<KernelPath>) {
    let mut seed = 1;
    for ty in TYPES {
        let shapes: &[(usize, usize)] = if ty.block_size() == 256 {
            &[(16, 256), (37, 768), (48, 1536), (32, 2048)]
        } else {
            &[(16, 32), (37, 96), (48, 576), (32, 1536)]
        };
        for &(rows, cols) in shapes {
            // Every group size of the four- and eight-row kernels, and a
            // full group followed by a short one.
            for n in [1, 2, 3, 4, 5, 6, 7, 9, 15] {
                seed += 1;
                check(path, ty, rows, cols, n, seed);
            }
        }
    }
}

per_path!(tiles_equal_vec_dot_bit_for_bit);
fn tiles_equal_vec_dot_bit_for_bit(path: KernelPath) {
    tiles_equal_vec_dot_on(Some(path));
}

#[test]
fn portable_tiles_equal_vec_dot_bit_for_bit() {
    tiles_equal_vec_dot_on(None);
}

#[test]
fn gemm_over_a_tile_range_writes_consecutive_panels() {
    let mut rng = Lcg(99);
    let (rows, cols, n) = (64, 64, 3);
    let w = random_weights(GgmlType::Q4_1, rows, cols, &mut rng);
    let a = quantized_acts(GgmlType::Q4_1, n, cols, &mut rng);
    let m = RepackedMatrix::new(GgmlType::Q4_1, rows, cols, bytemuck::cast_slice(&w)).unwrap();
    let ab = &bytemuck::cast_slice::<u16, u8>(&a)[..n * 36 * 2];
    let mut all = vec![0.0; 4 * n * TILE_ROWS];
    m.gemm(0..4, ab, n, &mut all);
    let mut part = vec![0.0; 2 * n * TILE_ROWS];
    m.gemm(1..3, ab, n, &mut part);
    assert_eq!(&all[n * TILE_ROWS..3 * n * TILE_ROWS], &part[..]);
}

/// `gemm_blocked` emits, over its column blocks and tile parts, exactly
/// the panels of one `gemm` over all tiles and columns (Q8_0 takes the
/// prepared-activation kernel on AVX-512 VNNI; Q4_K the plain one).
#[test]
fn blocked_gemm_emits_the_same_products() {
    for (ty, cols) in [(GgmlType::Q8_0, 96), (GgmlType::Q4_K, 512), (GgmlType::Q4_0, 64)] {
        let mut rng = Lcg(7);
        let (rows, n) = (80, 11);
        let w = random_weights(ty, rows, cols, &mut rng);
        let a = quantized_acts(ty, n, cols, &mut rng);
        let m = RepackedMatrix::new(ty, rows, cols, bytemuck::cast_slice(&w)).unwrap();
        let vt = kernels_for_path(ty, KernelPath::Scalar).unwrap().vec_dot_type;
        let arow = vt.type_size() * cols / vt.block_size();
        let ab = &bytemuck::cast_slice::<u16, u8>(&a)[..n * arow];
        let mut want = vec![0.0f32; m.tiles() * n * TILE_ROWS];
        m.gemm(0..m.tiles(), ab, n, &mut want);
        for (block, panel_floats) in [(1, 1), (3, 100), (4, 10_000), (64, 1 << 20)] {
            let mut got = vec![f32::NAN; want.len()];
            let mut seen = 0;
            m.gemm_blocked(1..m.tiles(), ab, n, block, panel_floats, |part, c0, nc, panel| {
                assert_eq!(panel.len(), part.len() * nc * TILE_ROWS);
                for (i, t) in part.clone().enumerate() {
                    for c in 0..nc {
                        let dst = (t * n + c0 + c) * TILE_ROWS;
                        got[dst..dst + TILE_ROWS].copy_from_slice(&panel[(i * nc + c) * TILE_ROWS..(i * nc + c + 1) * TILE_ROWS]);
                    }
                }
                seen += part.len() * nc;
            });
            assert_eq!(seen, (m.tiles() - 1) * n, "{ty} block {block}: every tile and column once");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let skip = n * TILE_ROWS; // tile 0 was not asked for
            assert_eq!(bits(&got[skip..]), bits(&want[skip..]), "{ty} block {block} panel {panel_floats}");
        }
    }
}

#[test]
fn bad_shapes_are_errors() {
    assert_eq!(
        RepackedMatrix::new(GgmlType::Q3_K, 16, 256, &[0; 16 * 110]).unwrap_err(),
        RepackError::Unsupported(GgmlType::Q3_K)
    );
    assert!(matches!(
        RepackedMatrix::new(GgmlType::Q4_K, 16, 128, &[0; 16 * 72]),
        Err(RepackError::Columns { .. })
    ));
    assert!(matches!(
        RepackedMatrix::new(GgmlType::Q8_0, 16, 48, &[0; 16 * 34]),
        Err(RepackError::Columns { .. })
    ));
    assert!(matches!(
        RepackedMatrix::new(GgmlType::Q8_0, 16, 32, &[0; 15 * 34]),
        Err(RepackError::Length { .. })
    ));
    // Fewer rows than a tile: nothing to interleave, all rows via vec_dot.
    let m = RepackedMatrix::new(GgmlType::Q8_0, 5, 32, &[0; 5 * 34]).unwrap();
    assert_eq!((m.tiles(), m.tile_rows()), (0, 0));
}
