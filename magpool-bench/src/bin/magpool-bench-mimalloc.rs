//! A child of the bench report whose global allocator is mimalloc (behind
//! the counting wrapper): the report runs the implementations whose names end
//! in `-mimalloc` here (see `magpool_bench::child`). Not for running by hand,
//! but for profiling one measurement:
//! `magpool-bench-mimalloc --child bytesmut-mimalloc freeze/4KiB --iters N`.

use magpool_bench::child::{sibling_main, Global};
use magpool_bench::count::CountingAlloc;
use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: CountingAlloc<MiMalloc> = CountingAlloc(MiMalloc);

fn main() -> std::process::ExitCode {
    sibling_main(Global::Mimalloc)
}
