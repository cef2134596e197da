//! A child of the bench report whose global allocator is jemalloc (behind
//! the counting wrapper): the report runs the implementations whose names end
//! in `-jemalloc` here (see `magpool_bench::child`). Not for running by hand,
//! but for profiling one measurement:
//! `magpool-bench-jemalloc --child bytesmut-jemalloc freeze/4KiB --iters N`.

use magpool_bench::child::{sibling_main, Global};
use magpool_bench::count::CountingAlloc;
use tikv_jemallocator::Jemalloc;

#[global_allocator]
static GLOBAL: CountingAlloc<Jemalloc> = CountingAlloc(Jemalloc);

fn main() -> std::process::ExitCode {
    sibling_main(Global::Jemalloc)
}
