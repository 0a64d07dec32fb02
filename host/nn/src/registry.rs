//! Graphs by name for one guest: every preloaded model, as a wasi-nn graph
//! bound to the guest's limits.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime_wasi_nn::{Graph, GraphRegistry};

use crate::backend::graph;
use crate::engine::GuestEnv;

/// `load-by-name` lookup table (`--model NAME=PATH`, `--nn-preload`).
pub struct NnRegistry {
    graphs: HashMap<String, Graph>,
}

impl std::fmt::Debug for NnRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NnRegistry").field("graphs", &self.graphs.keys().collect::<Vec<_>>()).finish()
    }
}

impl NnRegistry {
    pub fn new(env: &Arc<GuestEnv>) -> NnRegistry {
        let graphs = env.models.iter().map(|(name, m)| (name.to_string(), graph(env, Arc::clone(m)))).collect();
        NnRegistry { graphs }
    }
}

impl GraphRegistry for NnRegistry {
    fn get(&self, name: &str) -> Option<&Graph> {
        self.graphs.get(name)
    }
    fn get_mut(&mut self, name: &str) -> Option<&mut Graph> {
        self.graphs.get_mut(name)
    }
}
