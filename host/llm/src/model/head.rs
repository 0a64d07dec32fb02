//! The ends of a decoder shared by every architecture: the token embedding
//! on the way in, and the final norm plus the (possibly tied) output
//! projection on the way out. Encoders (BERT) add absolute position and
//! token-type embeddings and a norm on the way in, and have no way out
//! but their hidden states.

use edgewasm_gguf::GgufFile;

use super::config::ModelConfig;
use super::matmul::{matmul, QMatrix};
use super::decoder::{Norm, NormKind};
use super::ops::add_inplace;
use super::Rows;
use super::weights::{optional_matrix, optional_vector, plain_matrix, Weights};
use super::Scratch;
use crate::threadpool::ThreadPool;
use crate::ModelError;

/// `token_embd`, `output_norm` (with its optional bias) and `output` (the
/// embedding when tied) with its optional bias; encoders have the
/// absolute position and type embeddings and no output.
#[derive(Debug)]
pub struct Head {
    token_embd: QMatrix,
    absolute: Option<Absolute>,
    output_norm: Option<Norm>,
    output: Option<QMatrix>,
    output_bias: Option<Vec<f32>>,
}

/// BERT's input beyond the token embedding: `position_embd` (one row per
/// trained position; none in RoPE encoders), row 0 of `token_types`
/// (every token is of type 0, "sentence A", as llama.cpp hard-codes it),
/// then `token_embd_norm`.
#[derive(Debug)]
struct Absolute {
    positions: Option<QMatrix>,
    type0: Option<Vec<f32>>,
    norm: Norm,
    norm_kind: NormKind,
    eps: f32,
}

/// Whether a model has its own output matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// `output.weight` if present, else the embedding.
    OwnOrTied,
    /// Always the embedding; `output.weight` is not read (Gemma, Command-R).
    Tied,
}

impl Head {
    pub fn load(g: &Weights<'_>, c: &ModelConfig, output: Output) -> Result<Head, ModelError> {
        Head::load_with_norm(g, c, output, "output_norm")
    }

    /// [`Head::load`] with the final norm named `norm` (LFM2's converter
    /// writes it as `token_embd_norm`).
    pub fn load_with_norm(g: &Weights<'_>, c: &ModelConfig, output: Output, norm: &str) -> Result<Head, ModelError> {
        // Only the output matrix is interleaved. When it is the embedding
        // (tied), lookups read rows back from that copy, so the mapped
        // embedding pages stay released.
        let mut token_embd = plain_matrix(g, "token_embd.weight", c.n_embd, c.n_vocab)?;
        let output_norm = Norm::load(g, norm, c.n_embd)?;
        let own = match output {
            Output::OwnOrTied => optional_matrix(g, "output.weight", c.n_embd, c.n_vocab)?,
            Output::Tied => None,
        };
        let output_bias = match own {
            Some(_) => optional_vector(g, "output.bias", c.n_vocab)?,
            None => None,
        };
        let output = match own {
            Some(m) => m,
            None => {
                token_embd.repack(g.file, g.arena());
                token_embd.clone()
            }
        };
        Ok(Head { token_embd, absolute: None, output_norm: Some(output_norm), output: Some(output), output_bias })
    }

    /// An encoder's head (BERT): token, position (`c.n_ctx_train` rows,
    /// with `positions`) and type-0 embeddings, summed and normed with
    /// `token_embd_norm` (`kind`, `eps`); no final norm, no output.
    pub fn load_encoder(g: &Weights<'_>, c: &ModelConfig, positions: bool, kind: NormKind, eps: f32) -> Result<Head, ModelError> {
        let d = c.n_embd;
        let token_embd = plain_matrix(g, "token_embd.weight", d, c.n_vocab)?;
        let positions = if positions { Some(plain_matrix(g, "position_embd.weight", d, c.n_ctx_train)?) } else { None };
        let type0 = match g.tensor("token_types.weight") {
            Some(t) => {
                let n_types = t.dims.get(1).copied().unwrap_or(1).max(1) as usize;
                let types = plain_matrix(g, "token_types.weight", d, n_types)?;
                let mut row = vec![0.0; d];
                types.dequantize_row(g.file, 0, &mut row);
                Some(row)
            }
            None => None,
        };
        let norm = Norm::load(g, "token_embd_norm", d)?;
        let absolute = Some(Absolute { positions, type0, norm, norm_kind: kind, eps });
        Ok(Head { token_embd, absolute, output_norm: None, output: None, output_bias: None })
    }

    /// Whether the model has an output layer (logits).
    pub fn has_output(&self) -> bool {
        self.output.is_some()
    }

    /// Writes the embeddings of `tokens` into `s.x`, multiplied by `scale`
    /// when it is not 1; encoders add their rows' position and type
    /// embeddings and norm the sum.
    pub fn embed(&self, file: &GgufFile, c: &ModelConfig, tokens: &[u32], scale: f32, rows: Rows<'_>, s: &mut Scratch) {
        let d = c.n_embd;
        let mut pos_row = Vec::new();
        for (i, &t) in tokens.iter().enumerate() {
            let row = &mut s.x[i * d..(i + 1) * d];
            self.token_embd.dequantize_row(file, t as usize, row);
            if scale != 1.0 {
                row.iter_mut().for_each(|v| *v *= scale);
            }
            if let Some(a) = &self.absolute {
                // llama.cpp's order: (token + type) + position, then the norm.
                if let Some(t0) = &a.type0 {
                    add_inplace(row, t0);
                }
                if let Some(positions) = &a.positions {
                    pos_row.resize(d, 0.0);
                    positions.dequantize_row(file, rows.pos(i), &mut pos_row);
                    add_inplace(row, &pos_row);
                }
                a.norm.apply(a.norm_kind, a.eps, row, &mut s.xn[i * d..(i + 1) * d]);
                row.copy_from_slice(&s.xn[i * d..(i + 1) * d]);
            }
        }
    }

    /// The final hidden states of batch rows `0..n` of `s.x` into `out`:
    /// after the final norm, where the model has one (llama.cpp's
    /// `result_norm`), else as they are (an encoder's last layer output).
    #[allow(clippy::too_many_arguments)]
    pub fn hidden(&self, pool: &ThreadPool, c: &ModelConfig, norm: NormKind, eps: f32, s: &Scratch, n: usize, out: &mut [f32]) {
        let d = c.n_embd;
        let x = &s.x[..n * d];
        match &self.output_norm {
            Some(on) => pool.for_each_row_mut(&mut out[..n * d], d, |i, o| on.apply(norm, eps, &x[i * d..(i + 1) * d], o)),
            None => out[..n * d].copy_from_slice(x),
        }
    }

    /// Logits of batch rows `out_from..n` of `s.x` into `logits`.
    #[allow(clippy::too_many_arguments)]
    pub fn logits(
        &self,
        pool: &ThreadPool,
        file: &GgufFile,
        c: &ModelConfig,
        norm: NormKind,
        eps: f32,
        s: &mut Scratch,
        n: usize,
        out_from: usize,
        logits: &mut [f32],
    ) {
        let (d, m) = (c.n_embd, n - out_from);
        // Encoders have no output: contexts refuse them
        // (`Architecture::has_logits`).
        let (Some(output), Some(output_norm)) = (&self.output, &self.output_norm) else { return };
        if m == 0 {
            return;
        }
        for i in out_from..n {
            let j = i - out_from;
            output_norm.apply(norm, eps, &s.x[i * d..(i + 1) * d], &mut s.xn[j * d..(j + 1) * d]);
        }
        matmul(pool, file, output, &s.xn[..m * d], m, &mut s.xq, logits);
        if let Some(b) = &self.output_bias {
            for row in logits[..m * c.n_vocab].chunks_exact_mut(c.n_vocab) {
                add_inplace(row, b);
            }
        }
    }
}
