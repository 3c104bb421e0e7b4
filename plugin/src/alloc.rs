//! The global allocator: the system's, with transparent huge pages asked for on large blocks,
//! and the largest blocks kept for reuse.
//!
//! A model's gradients and optimizer moments, and a layer's activations, are blocks of tens to
//! hundreds of MB that the training loop allocates per step. In 4 KiB pages each costs one
//! fault per page on first touch (and, with threads, a TLB shootdown per copy-on-write of the
//! zero page); in 2 MiB pages, 512 times fewer. Where the kernel's THP mode is `madvise` (the
//! common default) only an `madvise(MADV_HUGEPAGE)` turns them on; with `always` this is a
//! no-op, with `never` it is refused and ignored. Blocks above glibc's largest mmap threshold
//! (32 MiB: gradient buffers, three per training step) would still be mapped and cleared
//! afresh at each step (on a VM, fresh pages cost the host's faults too: a third of a step's
//! time); freed, they are kept (up to `CACHE_BYTES` in all) for the next allocation of the
//! same size and alignment, cleared in user space when zeroed memory is asked for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;

/// Blocks at least this large are advised.
const MIN_HUGE: usize = 8 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// Blocks at least this large are kept for reuse when freed.
const MIN_CACHED: usize = 32 << 20;
/// At most this many bytes are kept. Keeping a block never raises the process's peak memory
/// (it was resident when freed); it only holds the peak. A training step at 8 x 512 tokens
/// frees ~3.5 GB of such blocks (attention probabilities of 50 MB per layer and replica); with
/// 2 GiB kept, the rest went back to the kernel and was faulted in again at every step.
const CACHE_BYTES: usize = 8 << 30;

/// Freed large blocks: (size, align, address).
static CACHE: Mutex<Vec<(usize, usize, usize)>> = Mutex::new(Vec::new());

pub struct HugePages;

/// Frees every kept block: for a stage whose large blocks will not come back (an engine's
/// load, once its weights are packed), so that they do not stay resident.
pub fn release_kept() {
    let blocks = match CACHE.lock() {
        Ok(mut cache) => std::mem::take(&mut *cache),
        Err(_) => return,
    };
    for (size, align, ptr) in blocks {
        // SAFETY: each kept block came from `System` with this layout and is owned by no one.
        unsafe {
            System.dealloc(
                ptr as *mut u8,
                Layout::from_size_align_unchecked(size, align),
            )
        }
    }
}

/// A kept block of exactly this layout, if any.
fn reuse(layout: Layout) -> Option<*mut u8> {
    if layout.size() < MIN_CACHED {
        return None;
    }
    let mut cache = CACHE.lock().ok()?;
    let i = cache
        .iter()
        .position(|&(size, align, _)| size == layout.size() && align == layout.align())?;
    Some(cache.swap_remove(i).2 as *mut u8)
}

/// Keeps a freed block if it is large and the cache has room; false: free it.
fn keep(ptr: *mut u8, layout: Layout) -> bool {
    if layout.size() < MIN_CACHED {
        return false;
    }
    let Ok(mut cache) = CACHE.lock() else {
        return false;
    };
    let held: usize = cache.iter().map(|b| b.0).sum();
    if held + layout.size() > CACHE_BYTES {
        return false;
    }
    cache.push((layout.size(), layout.align(), ptr as usize));
    true
}

#[global_allocator]
static GLOBAL: HugePages = HugePages;

fn advise(p: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    if size >= MIN_HUGE && !p.is_null() {
        let start = (p as usize).next_multiple_of(HUGE_PAGE);
        let end = (p as usize + size) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: an advice on whole pages inside a block we just allocated; it changes
            // how the kernel backs them, not their contents. Failure is harmless.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, size);
}

// SAFETY: blocks come from `System` (directly, or kept from an earlier allocation of the same
// layout, never handed out twice); `advise` only adds a hint on a returned block.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(p) = reuse(layout) {
            return p;
        }
        let p = System.alloc(layout);
        advise(p, layout.size());
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if let Some(p) = reuse(layout) {
            std::ptr::write_bytes(p, 0, layout.size());
            return p;
        }
        let p = System.alloc_zeroed(layout);
        advise(p, layout.size());
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !keep(ptr, layout) {
            System.dealloc(ptr, layout)
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() < MIN_CACHED && new_size < MIN_CACHED {
            let p = System.realloc(ptr, layout, new_size);
            advise(p, new_size);
            return p;
        }
        // Through alloc and dealloc, so that large blocks go through the cache.
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let p = self.alloc(new_layout);
        if !p.is_null() {
            std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        p
    }
}
