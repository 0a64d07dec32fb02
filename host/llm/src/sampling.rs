//! Token sampling and stop strings.
//!
//! [`Sampler`] follows llama.cpp's default `common_sampler` chain:
//! repetition penalty → top-k → top-p → min-p → temperature → random draw,
//! with a seeded generator of our own (xoshiro256**), so a seed always gives
//! the same sequence. Temperature ≤ 0 is greedy: the highest logit after
//! penalties, ties to the lowest id (llama.cpp's greedy).
//!
//! [`StopMatcher`] finds stop strings in streamed text even when they are
//! split across tokens, holding back text that may be the start of one.

/// Sampling parameters. `Default` is llama.cpp's common defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; `<= 0` means greedy argmax.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 = off.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `top_p`; 1 = off.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` × the most likely one; 0 = off.
    pub min_p: f32,
    /// Divide positive / multiply negative logits of recent tokens; 1 = off.
    pub repeat_penalty: f32,
    /// How many of the most recent tokens the repeat penalty looks at.
    pub repeat_last_n: usize,
    /// Random seed; the same seed gives the same samples.
    pub seed: u64,
}

/// The seed used unless one is given (llama.cpp's `LLAMA_DEFAULT_SEED`
/// value, which here is a fixed seed, not "random").
pub const DEFAULT_SEED: u64 = 0xFFFF_FFFF;

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: DEFAULT_SEED,
        }
    }
}

impl SamplerConfig {
    /// Greedy decoding: always the most likely token.
    pub fn greedy() -> Self {
        SamplerConfig { temperature: 0.0, ..SamplerConfig::default() }
    }
}

/// xoshiro256** seeded through SplitMix64.
#[derive(Clone, Debug)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Picks the next token from a logit vector.
///
/// Reuses its buffers: after the first call, sampling allocates nothing.
#[derive(Clone, Debug)]
pub struct Sampler {
    cfg: SamplerConfig,
    rng: Rng,
    /// (logit, id) candidates, reused between calls.
    cand: Vec<(f32, u32)>,
    /// Distinct recent tokens for the repeat penalty, reused.
    recent: Vec<u32>,
}

/// Sorts candidates by logit, highest first, ties to the lowest id.
fn by_logit_desc(a: &(f32, u32), b: &(f32, u32)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// NaN can never be chosen; +inf is the largest finite logit.
fn sanitize(l: f32) -> f32 {
    if l.is_nan() {
        f32::NEG_INFINITY
    } else {
        l.min(f32::MAX)
    }
}

impl Sampler {
    /// A sampler with its generator seeded from `cfg.seed`.
    pub fn new(cfg: SamplerConfig) -> Self {
        let rng = Rng::new(cfg.seed);
        Sampler { cfg, rng, cand: Vec::new(), recent: Vec::new() }
    }

    /// The configuration in use.
    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// Samples a token id from `logits` (one per vocabulary entry).
    /// `history` is the sequence so far (prompt and generated tokens); its
    /// last `repeat_last_n` tokens are penalised. Returns 0 for empty logits.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        if logits.is_empty() {
            return 0;
        }
        let cfg = &self.cfg;
        self.cand.clear();
        self.cand.extend(logits.iter().enumerate().map(|(i, &l)| (sanitize(l), i as u32)));

        // Repetition penalty, once per distinct recent token (llama.cpp).
        if cfg.repeat_penalty != 1.0 && cfg.repeat_last_n > 0 {
            let window = &history[history.len().saturating_sub(cfg.repeat_last_n)..];
            self.recent.clear();
            self.recent.extend_from_slice(window);
            self.recent.sort_unstable();
            self.recent.dedup();
            for &id in &self.recent {
                if let Some(c) = self.cand.get_mut(id as usize) {
                    c.0 = if c.0 <= 0.0 { c.0 * cfg.repeat_penalty } else { c.0 / cfg.repeat_penalty };
                }
            }
        }

        if cfg.temperature <= 0.0 {
            // First maximum in id order: ties go to the lowest id.
            let mut best = self.cand[0];
            for &c in &self.cand[1..] {
                if c.0 > best.0 {
                    best = c;
                }
            }
            return best.1;
        }

        // Top-k, leaving the candidates sorted by logit.
        let n = self.cand.len();
        let k = if cfg.top_k == 0 { n } else { cfg.top_k.min(n) };
        if k < n {
            self.cand.select_nth_unstable_by(k - 1, by_logit_desc);
            self.cand.truncate(k);
        }
        self.cand.sort_unstable_by(by_logit_desc);

        // Top-p over the softmax of what is left.
        if cfg.top_p < 1.0 {
            let max = self.cand[0].0;
            let sum: f64 = self.cand.iter().map(|c| ((c.0 - max) as f64).exp()).sum();
            let mut cum = 0.0;
            let mut keep = self.cand.len();
            for (i, c) in self.cand.iter().enumerate() {
                cum += ((c.0 - max) as f64).exp() / sum;
                if cum >= cfg.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            self.cand.truncate(keep.max(1));
        }

        // Min-p: logit ≥ max logit + ln(min_p).
        if cfg.min_p > 0.0 {
            let floor = self.cand[0].0 + cfg.min_p.ln();
            let keep = self.cand.iter().take_while(|c| c.0 >= floor).count();
            self.cand.truncate(keep.max(1));
        }

        // Temperature, then a draw from the softmax.
        let inv_t = 1.0 / cfg.temperature as f64;
        let max = self.cand[0].0 as f64;
        let mut sum = 0.0;
        for c in self.cand.iter_mut() {
            let w = ((c.0 as f64 - max) * inv_t).exp();
            // Reuse the logit slot for the weight.
            c.0 = w as f32;
            sum += w;
        }
        if !(sum.is_finite() && sum > 0.0) {
            return self.cand[0].1;
        }
        let mut r = self.rng.next_f64() * sum;
        for c in &self.cand {
            r -= c.0 as f64;
            if r < 0.0 {
                return c.1;
            }
        }
        self.cand[self.cand.len() - 1].1
    }
}

/// Detects stop strings ("reverse prompts") in streamed text.
///
/// Text that could be the beginning of a stop string is held back until it
/// is clear either way, so streamed output never shows part of a stop string.
#[derive(Clone, Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
    matched: Option<usize>,
}

impl StopMatcher {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new<I, S>(stops: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let stops = stops.into_iter().map(Into::into).filter(|s: &String| !s.is_empty()).collect();
        StopMatcher { stops, held: String::new(), matched: None }
    }

    /// Adds a chunk of generated text. Returns the text that is safe to show
    /// and whether a stop string was found; if so, the returned text is
    /// everything before it, and later pushes return nothing.
    pub fn push(&mut self, chunk: &str) -> (String, bool) {
        if self.matched.is_some() {
            return (String::new(), true);
        }
        self.held.push_str(chunk);
        // The earliest stop string wins.
        let hit = self
            .stops
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.held.find(s.as_str()).map(|p| (p, i)))
            .min();
        if let Some((pos, i)) = hit {
            self.matched = Some(i);
            self.held.truncate(pos);
            return (std::mem::take(&mut self.held), true);
        }
        // Hold back the longest tail that is a proper prefix of a stop string.
        let keep = self
            .stops
            .iter()
            .map(|s| {
                (1..s.len().min(self.held.len() + 1))
                    .rev()
                    .find(|&n| s.is_char_boundary(n) && self.held.ends_with(&s[..n]))
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        let emit_len = self.held.len() - keep;
        let rest = self.held.split_off(emit_len);
        (std::mem::replace(&mut self.held, rest), false)
    }

    /// Returns the held-back text (generation ended without a stop string).
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The stop string that was found, if any.
    pub fn matched(&self) -> Option<&str> {
        self.matched.map(|i| self.stops[i].as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(temperature: f32) -> SamplerConfig {
        SamplerConfig { temperature, top_k: 0, top_p: 1.0, min_p: 0.0, ..SamplerConfig::default() }
    }

    fn draws(cfg: SamplerConfig, logits: &[f32], n: usize) -> Vec<u32> {
        let mut s = Sampler::new(cfg);
        (0..n).map(|_| s.sample(logits, &[])).collect()
    }

    fn counts(ids: &[u32], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        ids.iter().for_each(|&i| c[i as usize] += 1);
        c
    }

    #[test]
    fn defaults_like_llama_cpp() {
        let d = SamplerConfig::default();
        assert_eq!((d.temperature, d.top_k, d.top_p, d.min_p), (0.8, 40, 0.95, 0.05));
        assert_eq!((d.repeat_penalty, d.repeat_last_n), (1.0, 64));
    }

    #[test]
    fn seeded_and_deterministic() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let c = SamplerConfig { seed: 7, ..SamplerConfig::default() };
        assert_eq!(draws(c.clone(), &logits, 200), draws(c.clone(), &logits, 200));
        let other = draws(SamplerConfig { seed: 8, ..c.clone() }, &logits, 200);
        assert_ne!(draws(c, &logits, 200), other);
    }

    #[test]
    fn greedy_is_argmax_lowest_id_on_ties() {
        let mut s = Sampler::new(SamplerConfig::greedy());
        assert_eq!(s.sample(&[0.1, 3.0, -1.0, 2.9], &[]), 1);
        assert_eq!(s.sample(&[1.0, 5.0, 5.0, 5.0], &[]), 1);
        assert_eq!(s.sample(&[f32::NAN, 0.5, f32::NAN], &[]), 1);
        assert_eq!(s.sample(&[f32::NEG_INFINITY; 3], &[]), 0);
        assert_eq!(s.sample(&[], &[]), 0);
    }

    #[test]
    fn top_k_one_is_greedy() {
        let logits: Vec<f32> = (0..100).map(|i| ((i * 7919) % 101) as f32 / 10.0).collect();
        let argmax = Sampler::new(SamplerConfig::greedy()).sample(&logits, &[]);
        let c = SamplerConfig { top_k: 1, temperature: 1.5, ..cfg(1.5) };
        assert!(draws(c, &logits, 100).iter().all(|&id| id == argmax));
    }

    #[test]
    fn temperature_one_follows_softmax() {
        // p = softmax([ln 1, ln 2, ln 7]) = [0.1, 0.2, 0.7]
        let logits = [1f32.ln(), 2f32.ln(), 7f32.ln()];
        let c = counts(&draws(cfg(1.0), &logits, 20_000), 3);
        for (got, p) in c.iter().zip([0.1, 0.2, 0.7]) {
            assert!((*got as f64 / 20_000.0 - p).abs() < 0.02, "{c:?}");
        }
    }

    #[test]
    fn min_p_filters() {
        // Relative to the best (0.5): 0.3 → 0.6, 0.15 → 0.3, 0.05 → 0.1.
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.15f32.ln(), 0.05f32.ln()];
        let c = counts(&draws(SamplerConfig { min_p: 0.35, ..cfg(1.0) }, &logits, 5000), 4);
        assert!(c[0] > 0 && c[1] > 0 && c[2] == 0 && c[3] == 0, "{c:?}");
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        let logits = [0.5f32.ln(), 0.3f32.ln(), 0.15f32.ln(), 0.05f32.ln()];
        // 0.5 + 0.3 = 0.8 ≥ 0.75: the nucleus is tokens 0 and 1.
        let c = counts(&draws(SamplerConfig { top_p: 0.75, ..cfg(1.0) }, &logits, 5000), 4);
        assert!(c[0] > 0 && c[1] > 0 && c[2] == 0 && c[3] == 0, "{c:?}");
        // A tiny top_p still keeps one token.
        let c = counts(&draws(SamplerConfig { top_p: 0.01, ..cfg(1.0) }, &logits, 100), 4);
        assert_eq!(c[0], 100);
    }

    #[test]
    fn repeat_penalty_like_llama_cpp() {
        let greedy = |logits: &[f32], hist: &[u32]| {
            Sampler::new(SamplerConfig { repeat_penalty: 2.0, ..SamplerConfig::greedy() }).sample(logits, hist)
        };
        // Positive logits are divided: 3.0/2 = 1.5 < 2.0.
        assert_eq!(greedy(&[3.0, 2.0], &[0]), 1);
        // Negative logits are multiplied: -1*2 = -2 < -1.5.
        assert_eq!(greedy(&[-1.0, -1.5], &[0, 0, 0]), 1);
        // Once per distinct token, however often it occurs: 4/2 = 2 > 1.9.
        assert_eq!(greedy(&[4.0, 1.9], &[0, 0, 0, 0]), 0);
        // Only the last `repeat_last_n` tokens count.
        let mut s = Sampler::new(SamplerConfig { repeat_penalty: 2.0, repeat_last_n: 2, ..SamplerConfig::greedy() });
        assert_eq!(s.sample(&[3.0, 2.0], &[0, 1, 1]), 0);
    }

    #[test]
    fn odd_logits_do_not_panic() {
        let logits = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0, f32::INFINITY];
        let ids = draws(SamplerConfig::default(), &logits, 50);
        assert!(ids.iter().all(|&i| i == 1 || i == 4), "{ids:?}");
        let all_bad = [f32::NAN, f32::NEG_INFINITY];
        assert!(draws(SamplerConfig::default(), &all_bad, 10).iter().all(|&i| i < 2));
    }

    fn stream(m: &mut StopMatcher, chunks: &[&str]) -> (String, bool) {
        let mut out = String::new();
        for c in chunks {
            let (t, hit) = m.push(c);
            out.push_str(&t);
            if hit {
                return (out, true);
            }
        }
        out.push_str(&m.flush());
        (out, false)
    }

    #[test]
    fn stop_strings_split_across_chunks() {
        let mut m = StopMatcher::new(["<|im_end|>", "User:"]);
        assert_eq!(m.push("Hello <|im"), ("Hello ".to_string(), false));
        assert_eq!(m.push("_en"), (String::new(), false));
        assert_eq!(m.push("d|> more"), (String::new(), true));
        assert_eq!(m.matched(), Some("<|im_end|>"));
        assert_eq!(m.push("later"), (String::new(), true));

        let mut m = StopMatcher::new(vec!["User:".to_string()]);
        assert_eq!(stream(&mut m, &["a U", "se", "r is", " here"]), ("a User is here".into(), false));
        let mut m = StopMatcher::new(vec!["User:".to_string()]);
        assert_eq!(stream(&mut m, &["ok\nU", "ser", ": hi"]), ("ok\n".into(), true));
    }

    #[test]
    fn stop_matcher_never_leaks_a_prefix() {
        // Whatever the chunking, the emitted text never contains a stop string
        // or ends inside one, and emitted + stop is the text up to the stop.
        let text = "abc 日本語 STOP-ME tail";
        let chars: Vec<char> = text.chars().collect();
        for split in 1..chars.len() {
            let a: String = chars[..split].iter().collect();
            let b: String = chars[split..].iter().collect();
            let mut m = StopMatcher::new(["STOP-ME", "日本語X"]);
            let (out, hit) = stream(&mut m, &[&a, &b]);
            assert!(hit);
            assert_eq!(out, "abc 日本語 ");
        }
        let mut m = StopMatcher::new(Vec::<String>::new());
        assert_eq!(m.push("anything"), ("anything".into(), false));
    }
}
