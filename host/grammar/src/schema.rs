//! JSON Schema to GBNF (being written).
