//! `kernels/embedding.cu`'s host side: word + position + token type 0; the backward pass in a
//! fixed order (word rows grouped by id through `tensor::scatter_add_rows`, positions one
//! block each, the token type by column sums).

use super::{rows, tensor, DView, DViewMut, Gpu};

pub(super) fn forward(
    g: &Gpu,
    out: DViewMut<'_>,
    ids: &[u32],
    (word, pos, tok_type): (DView<'_>, DView<'_>, DView<'_>),
    s: usize,
    c: usize,
) {
    let ids_d = g.to_device(ids);
    g.k().embedding_forward(
        rows(ids.len(), c),
        out.out(),
        g.out(&ids_d).read(),
        word.input(),
        pos.input(),
        tok_type.input(),
        s as i32,
        c as i32,
    );
}

pub(super) fn backward(
    g: &Gpu,
    (dword, dpos, dtok_type): (DViewMut<'_>, DViewMut<'_>, DViewMut<'_>),
    dout: DView<'_>,
    ids: &[u32],
    s: usize,
    c: usize,
) {
    let t = ids.len();
    let rows_of: Vec<usize> = ids.iter().map(|&i| i as usize).collect();
    tensor::scatter_add_rows(g, dword, dout, &rows_of, c);
    g.k().embedding_position_backward(
        rows(s, c),
        dpos.out(),
        dout.input(),
        (t / s) as i32,
        s as i32,
        c as i32,
    );
    tensor::column_sums_into(g, dtok_type.out(), dout.input(), t, c);
}
