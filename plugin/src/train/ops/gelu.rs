//! Exact GELU, as BERT's "gelu": `x · Φ(x) = 0.5 x (1 + erf(x / √2))`, on the vectorised
//! erf of `vmath` (within 2.5e-7·|x| of the exact function).

pub use super::vmath::{gelu_backward as backward, gelu_forward as forward};
