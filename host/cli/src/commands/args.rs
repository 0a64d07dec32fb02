//! Value parsers shared by the subcommands: numbers that must be positive
//! or finite are refused by clap with a message naming the flag (exit 2),
//! instead of being clamped or reaching the engine.

/// A count of at least 1 (threads, context positions, repetitions, ...).
pub fn positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a positive integer ({e})")),
    }
}

/// A finite number ≥ 0 (temperature, top-p, min-p, repeat penalty).
pub fn non_negative(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number ≥ 0, got {v}")),
        Err(e) => Err(format!("not a number ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(positive("4"), Ok(4));
        assert!(positive("0").is_err() && positive("-1").is_err() && positive("x").is_err());
        assert_eq!(non_negative("0"), Ok(0.0));
        for bad in ["nan", "inf", "-0.5", "x"] {
            assert!(non_negative(bad).is_err(), "{bad}");
        }
    }
}
