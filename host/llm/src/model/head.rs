//! The ends of a decoder shared by every architecture: the token embedding
//! on the way in, and the final norm plus the (possibly tied) output
//! projection on the way out.

use edgewasm_gguf::GgufFile;

use super::config::ModelConfig;
use super::matmul::{matmul, QMatrix};
use super::decoder::{Norm, NormKind};
use super::ops::add_inplace;
use super::weights::{optional_matrix, optional_vector, plain_matrix, Weights};
use super::Scratch;
use crate::threadpool::ThreadPool;
use crate::ModelError;

/// `token_embd`, `output_norm` (with its optional bias) and `output` (the
/// embedding when tied) with its optional bias.
#[derive(Debug)]
pub struct Head {
    token_embd: QMatrix,
    output_norm: Norm,
    output: QMatrix,
    output_bias: Option<Vec<f32>>,
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
        Ok(Head { token_embd, output_norm, output, output_bias })
    }

    /// Writes the embeddings of `tokens` into `s.x`, multiplied by `scale`
    /// when it is not 1.
    pub fn embed(&self, file: &GgufFile, c: &ModelConfig, tokens: &[u32], scale: f32, s: &mut Scratch) {
        let d = c.n_embd;
        for (i, &t) in tokens.iter().enumerate() {
            let row = &mut s.x[i * d..(i + 1) * d];
            self.token_embd.dequantize_row(file, t as usize, row);
            if scale != 1.0 {
                row.iter_mut().for_each(|v| *v *= scale);
            }
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
        if m == 0 {
            return;
        }
        for i in out_from..n {
            let j = i - out_from;
            self.output_norm.apply(norm, eps, &s.x[i * d..(i + 1) * d], &mut s.xn[j * d..(j + 1) * d]);
        }
        matmul(pool, file, &self.output, &s.xn[..m * d], m, &mut s.xq, logits);
        if let Some(b) = &self.output_bias {
            for row in logits[..m * c.n_vocab].chunks_exact_mut(c.n_vocab) {
                add_inplace(row, b);
            }
        }
    }
}
