//! Looking up weight tensors by name and checking their shapes.

use std::ops::Deref;
use std::sync::Arc;

use edgewasm_gguf::{GgmlType, GgufFile, TensorInfo};
use edgewasm_kernels::gemm::{self, RepackedMatrix, WeightArena};

use super::matmul::QMatrix;
use crate::ModelError;

/// The file weights are loaded from, and the huge-page arena their
/// interleaved copies go to (sized for every matrix that could need one).
#[derive(Debug)]
pub struct Weights<'a> {
    pub file: &'a GgufFile,
    arena: Option<Arc<WeightArena>>,
}

impl<'a> Weights<'a> {
    pub fn new(file: &'a GgufFile) -> Weights<'a> {
        Weights { file, arena: WeightArena::new(repack_bytes(file)) }
    }

    pub fn arena(&self) -> Option<&Arc<WeightArena>> {
        self.arena.as_ref()
    }
}

/// Bytes of the interleaved copies of every matrix of `file` that could
/// get one (0 where the CPU has no tile kernels). Saturating: an absurd
/// total just fails to map, and the heap is used.
pub fn repack_bytes(file: &GgufFile) -> usize {
    file.tensors()
        .iter()
        .filter(|t| t.dims.len() >= 2 && gemm::repack_pays_off(t.ty))
        .map(|t| {
            // One interleaved copy per 2-D slice (experts of a 3-D tensor).
            let one = RepackedMatrix::bytes_for(t.ty, t.dims[1] as usize, t.dims[0] as usize);
            let one = one.checked_next_multiple_of(64).unwrap_or(usize::MAX);
            let slices = t.dims[2..].iter().try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?));
            slices.map_or(usize::MAX, |s| one.saturating_mul(s))
        })
        .fold(0, usize::saturating_add)
}

/// Bytes a model built over `file` allocates on top of the file itself, at
/// most: the interleaved weight copies and the f32 copies of the vectors
/// (norm weights).
pub fn host_bytes(file: &GgufFile) -> usize {
    let vectors = file
        .tensors()
        .iter()
        // Norm weights, and the convolution taps of recurrent layers, are
        // kept as f32 copies.
        .filter(|t| t.dims.len() == 1 || t.name.ends_with(".shortconv.conv.weight"))
        .map(|t| usize::try_from(t.n_elements()).unwrap_or(usize::MAX).saturating_mul(size_of::<f32>()))
        .fold(0, usize::saturating_add);
    repack_bytes(file).saturating_add(vectors)
}

impl Deref for Weights<'_> {
    type Target = GgufFile;
    fn deref(&self) -> &GgufFile {
        self.file
    }
}

/// Types the matmul path has kernels for (Q8_K and Q8_1 are activation
/// formats, never weights). Every weight is checked with this as it is
/// loaded, so a file with any other type is refused before it runs.
pub(super) fn supported(ty: GgmlType) -> bool {
    ty != GgmlType::Q8_K && ty != GgmlType::Q8_1 && edgewasm_kernels::try_kernels_for(ty).is_some()
}

/// A matrix stored as `[cols, rows]` in ggml order (rows of `cols` values),
/// interleaved for the tile kernels where the CPU has them.
pub fn matrix(g: &Weights<'_>, name: &str, cols: usize, rows: usize) -> Result<QMatrix, ModelError> {
    let mut m = plain_matrix(g, name, cols, rows)?;
    m.repack(g.file, g.arena());
    Ok(m)
}

/// [`matrix`] without the interleaved copy (for row lookups only).
pub fn plain_matrix(g: &Weights<'_>, name: &str, cols: usize, rows: usize) -> Result<QMatrix, ModelError> {
    let t = checked_tensor(g, name, &[cols, rows])?;
    Ok(QMatrix::new(t, rows, cols))
}

/// The tensor `name`, if its shape is `dims` in ggml order (dimensions of
/// 1 may be added or left off at the end, as ggml pads them), its type
/// one the matmul has kernels for, and its data aligned for them.
fn checked_tensor<'a>(g: &'a Weights<'_>, name: &str, dims: &[usize]) -> Result<&'a TensorInfo, ModelError> {
    let t = g.tensor(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
    let n = t.dims.len().max(dims.len());
    let ok = (0..n).all(|i| t.dims.get(i).copied().unwrap_or(1) == dims.get(i).map_or(1, |&d| d as u64));
    if !ok {
        return Err(ModelError::TensorShape {
            tensor: name.to_string(),
            expected: dims.iter().map(|&d| d as u64).collect(),
            found: t.dims.clone(),
        });
    }
    if !supported(t.ty) {
        return Err(ModelError::TensorType { tensor: name.to_string(), ty: t.ty });
    }
    check_alignment(g, name, t.ty)?;
    Ok(t)
}

/// The `n` experts of a 3-D tensor `{cols, rows, n}` (ggml order), each a
/// [`QMatrix`] view of its `rows × cols` slice, interleaved for the tile
/// kernels where the CPU has them.
pub fn experts(g: &Weights<'_>, name: &str, cols: usize, rows: usize, n: usize) -> Result<Vec<QMatrix>, ModelError> {
    let t = checked_tensor(g, name, &[cols, rows, n])?;
    // The reader checked that the data is `rows × n` rows of `cols`; check
    // it again here, where the slices are cut.
    let expert_bytes = (t.ty.type_size() * cols / t.ty.block_size()).checked_mul(rows);
    let total = expert_bytes.and_then(|b| b.checked_mul(n));
    let (Some(expert_bytes), Some(total)) = (expert_bytes, total) else {
        return Err(ModelError::TensorShape { tensor: name.to_string(), expected: vec![cols as u64, rows as u64, n as u64], found: t.dims.clone() });
    };
    if g.tensor_data(t).len() != total {
        return Err(ModelError::TensorShape { tensor: name.to_string(), expected: vec![cols as u64, rows as u64, n as u64], found: t.dims.clone() });
    }
    Ok((0..n)
        .map(|e| {
            let mut m = QMatrix::slice(t, format!("{name}[{e}]"), rows, cols, e * expert_bytes);
            m.repack(g.file, g.arena());
            m
        })
        .collect())
}

/// Like [`experts`], but `None` when the tensor is absent.
pub fn optional_experts(g: &Weights<'_>, name: &str, cols: usize, rows: usize, n: usize) -> Result<Option<Vec<QMatrix>>, ModelError> {
    if g.tensor(name).is_none() {
        return Ok(None);
    }
    experts(g, name, cols, rows, n).map(Some)
}

/// Like [`matrix`], but `None` when the tensor is absent.
pub fn optional_matrix(g: &Weights<'_>, name: &str, cols: usize, rows: usize) -> Result<Option<QMatrix>, ModelError> {
    if g.tensor(name).is_none() {
        return Ok(None);
    }
    matrix(g, name, cols, rows).map(Some)
}

/// A vector of `n` values (norm weights), converted to f32.
pub fn vector(g: &Weights<'_>, name: &str, n: usize) -> Result<Vec<f32>, ModelError> {
    let t = g.tensor(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
    if t.n_elements() != n as u64 || t.dims[0] != n as u64 {
        return Err(ModelError::TensorShape {
            tensor: name.to_string(),
            expected: vec![n as u64],
            found: t.dims.clone(),
        });
    }
    if !supported(t.ty) {
        return Err(ModelError::TensorType { tensor: name.to_string(), ty: t.ty });
    }
    check_alignment(g, name, t.ty)?;
    let mut out = vec![0.0; n];
    edgewasm_kernels::dequantize_row(t.ty, g.tensor_data(t), &mut out);
    Ok(out)
}

/// A small tensor of shape `dims` (ggml order) converted to f32, row-major
/// as stored (convolution taps).
pub fn tensor_f32(g: &Weights<'_>, name: &str, dims: &[usize]) -> Result<Vec<f32>, ModelError> {
    let t = checked_tensor(g, name, dims)?;
    let mut out = crate::alloc::try_zeroed("f32 weights", dims.iter().product())?;
    edgewasm_kernels::dequantize_row(t.ty, g.tensor_data(t), &mut out);
    Ok(out)
}

/// Like [`vector`], but `None` when the tensor is absent (biases).
pub fn optional_vector(g: &Weights<'_>, name: &str, n: usize) -> Result<Option<Vec<f32>>, ModelError> {
    if g.tensor(name).is_none() {
        return Ok(None);
    }
    vector(g, name, n).map(Some)
}

/// The kernels reinterpret tensor bytes as block structs, which needs the
/// block's alignment; a file with a tiny `general.alignment` could break it.
fn check_alignment(g: &GgufFile, name: &str, ty: GgmlType) -> Result<(), ModelError> {
    let t = g.tensor(name).ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
    let need = match ty {
        GgmlType::F32 | GgmlType::Q8_K => 4,
        _ => 2,
    };
    let addr = g.tensor_data(t).as_ptr() as usize;
    let row = ty.type_size() * (t.dims[0] as usize) / ty.block_size();
    if addr % need != 0 || row % need != 0 {
        return Err(ModelError::TensorAlignment { tensor: name.to_string(), alignment: need });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use edgewasm_gguf::{GgufFile, GgufWriter};

    use super::{experts, Weights};
    use crate::ModelError;

    #[test]
    fn experts_are_views_of_their_slices() {
        let values: Vec<f32> = (0..4 * 3 * 2).map(|i| i as f32).collect();
        let mut w = GgufWriter::new();
        w.add_metadata("general.architecture", edgewasm_gguf::Value::from("llama")).unwrap();
        w.add_f32_tensor("e", &[4, 3, 2], &values).unwrap();
        w.add_f32_tensor("flat", &[4, 3], &values[..12]).unwrap();
        let file = GgufFile::from_bytes(&w.to_bytes().unwrap()).unwrap();
        let g = Weights::new(&file);
        let ex = experts(&g, "e", 4, 3, 2).unwrap();
        let mut row = [0f32; 4];
        for (e, m) in ex.iter().enumerate() {
            assert_eq!((m.rows, m.cols), (3, 4));
            for r in 0..3 {
                m.dequantize_row(&file, r, &mut row);
                assert_eq!(row[..], values[(e * 3 + r) * 4..][..4], "expert {e} row {r}");
            }
        }
        // One expert may be stored as a plain matrix.
        assert_eq!(experts(&g, "flat", 4, 3, 1).unwrap().len(), 1);
        for (cols, rows, n) in [(4, 3, 3), (4, 2, 2), (2, 3, 2), (4, 6, 1)] {
            let e = experts(&g, "e", cols, rows, n).unwrap_err();
            assert!(matches!(&e, ModelError::TensorShape { tensor, .. } if tensor == "e"), "{cols}×{rows}×{n}: {e}");
        }
        assert!(matches!(experts(&g, "none", 4, 3, 2), Err(ModelError::MissingTensor(_))));
    }
}
