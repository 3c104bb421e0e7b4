//! Launch shapes: the grids and blocks every kernel is launched with, in one place, so that the
//! backend (`backend/`) and the CPU emulation of the kernels (`plugin/tests/it/cuda_emulated.rs`)
//! run the same shapes. The reductions' shapes depend on the problem's size alone, never on the
//! card (its SM count), so every sum adds in the same order on every run and every GPU.

/// A launch: blocks in a 2-D grid, threads in a 1-D block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    pub grid: (usize, usize),
    pub block: usize,
}

/// Threads per block of the element-wise and column kernels.
pub const BLOCK: usize = 256;

/// Rows per chunk in the first pass of a column sum (`column_sums_partial`,
/// `layernorm_params_backward`).
pub const CHUNK_ROWS: usize = 32;

/// Blocks of `sum_squares`' first pass, whatever the length.
pub const SUM_SQUARES_BLOCKS: usize = 1024;

/// 1-D over `n` elements in blocks of [`BLOCK`].
pub fn elements(n: usize) -> Launch {
    Launch {
        grid: (n.div_ceil(BLOCK).max(1), 1),
        block: BLOCK,
    }
}

/// One block per row of `c` elements, threads a multiple of 32 up to 1024.
pub fn rows(n_rows: usize, c: usize) -> Launch {
    Launch {
        grid: (n_rows, 1),
        block: (c.div_ceil(32) * 32).clamp(32, 1024),
    }
}

/// A column sum's first pass over `t` rows of `c`: a thread per column, a grid row per chunk of
/// [`CHUNK_ROWS`] rows.
pub fn column_chunks(t: usize, c: usize) -> Launch {
    Launch {
        grid: (c.div_ceil(BLOCK).max(1), chunks(t)),
        block: BLOCK,
    }
}

/// How many chunks of [`CHUNK_ROWS`] rows `t` rows make.
pub fn chunks(t: usize) -> usize {
    t.div_ceil(CHUNK_ROWS).max(1)
}

/// `sum_squares`' fixed grid.
pub fn sum_squares() -> Launch {
    Launch {
        grid: (SUM_SQUARES_BLOCKS, 1),
        block: BLOCK,
    }
}

/// A scatter-add's rows (`rows[i]` is where source row `i` adds) grouped by target for
/// `scatter_add_rows`: the distinct targets ascending, each one's span in `order`
/// (`offsets`, one more than the targets), and the source rows by target, ascending within
/// each. One block per target then sums its sources in this order.
pub struct Grouped {
    pub targets: Vec<u32>,
    pub offsets: Vec<u32>,
    pub order: Vec<u32>,
}

pub fn group_rows(rows: &[usize]) -> Grouped {
    let mut order: Vec<u32> = (0..rows.len() as u32).collect();
    // Stable: sources of one target stay ascending.
    order.sort_by_key(|&i| rows[i as usize]);
    let (mut targets, mut offsets) = (vec![], vec![]);
    for (at, &i) in order.iter().enumerate() {
        let r = rows[i as usize] as u32;
        if targets.last() != Some(&r) {
            targets.push(r);
            offsets.push(at as u32);
        }
    }
    offsets.push(order.len() as u32);
    Grouped {
        targets,
        offsets,
        order,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_grouped_by_target_in_order() {
        let g = group_rows(&[4, 0, 8, 4, 0, 4]);
        assert_eq!(g.targets, [0, 4, 8]);
        assert_eq!(g.offsets, [0, 2, 5, 6]);
        assert_eq!(g.order, [1, 4, 0, 3, 5, 2]);
        let empty = group_rows(&[]);
        assert!(empty.targets.is_empty() && empty.order.is_empty());
        assert_eq!(empty.offsets, [0]);
    }

    #[test]
    fn shapes_depend_on_the_size_alone() {
        assert_eq!(elements(0).grid, (1, 1));
        assert_eq!(elements(257).grid, (2, 1));
        assert_eq!(rows(5, 768).block, 768);
        assert_eq!(rows(5, 2000).block, 1024);
        assert_eq!(rows(5, 1).block, 32);
        assert_eq!(column_chunks(4096, 768).grid, (3, 128));
        assert_eq!(column_chunks(1, 1).grid, (1, 1));
    }
}
