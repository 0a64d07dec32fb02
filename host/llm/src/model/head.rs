//! The ends of a decoder shared by every architecture: the token embedding
//! on the way in, and the final norm plus the (possibly tied) output
//! projection on the way out.

use edgewasm_gguf::GgufFile;

use super::config::ModelConfig;
use super::matmul::{matmul, QMatrix};
use super::ops::rms_norm;
use super::weights::{optional_matrix, plain_matrix, vector, Weights};
use super::Scratch;
use crate::threadpool::ThreadPool;
use crate::ModelError;

/// `token_embd`, `output_norm` and `output` (the embedding when tied).
#[derive(Debug)]
pub struct Head {
    token_embd: QMatrix,
    output_norm: Vec<f32>,
    output: QMatrix,
}

impl Head {
    pub fn load(g: &Weights<'_>, c: &ModelConfig) -> Result<Head, ModelError> {
        // Only the output matrix is interleaved. When it is the embedding
        // (tied), lookups read rows back from that copy, so the mapped
        // embedding pages stay released.
        let mut token_embd = plain_matrix(g, "token_embd.weight", c.n_embd, c.n_vocab)?;
        let output_norm = vector(g, "output_norm.weight", c.n_embd)?;
        let output = match optional_matrix(g, "output.weight", c.n_embd, c.n_vocab)? {
            Some(m) => m,
            None => {
                token_embd.repack(g.file, g.arena());
                token_embd.clone()
            }
        };
        Ok(Head { token_embd, output_norm, output })
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
    pub fn logits(
        &self,
        pool: &ThreadPool,
        file: &GgufFile,
        c: &ModelConfig,
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
            rms_norm(&s.x[i * d..(i + 1) * d], &self.output_norm, c.rms_eps, &mut s.xn[j * d..(j + 1) * d]);
        }
        matmul(pool, file, &self.output, &s.xn[..m * d], m, &mut s.xq, logits);
    }
}
