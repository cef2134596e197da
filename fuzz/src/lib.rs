//! Harnesses shared by the fuzz targets and their regression tests.

pub mod ops;

#[cfg(test)]
mod tests {
    use crate::ops::{run, Op};

    /// Regression programs: each one reaches a path a bug once hid in (or
    /// could), so `cargo test` replays it on every change.
    #[test]
    fn truncate_then_release_then_reuse_whole_block() {
        run(&[
            Op::Get { thread: 0, len: 100, whole: false },
            Op::Write { buf: 0, seed: 7 },
            Op::Truncate { buf: 0, len: 10 },
            Op::Release { thread: 0, buf: 0 },
            Op::Get { thread: 0, len: 100, whole: true },
        ]);
    }

    /// One thread swings between 12 live 256-byte buffers and none, wider
    /// than its two magazines of 2: its exchanges turn, so its magazines grow
    /// (to 8); then the other thread takes its grown empties from the depot
    /// and releases into them, one way.
    #[test]
    fn magazine_growth_then_one_way_flow() {
        let mut program = Vec::new();
        for _ in 0..4 {
            program.extend((0..12).map(|_| Op::Get { thread: 0, len: 256, whole: true }));
            program.extend((0..12).map(|_| Op::Release { thread: 0, buf: 0 }));
        }
        program.push(Op::Flush { thread: 0 });
        program.extend((0..12).map(|_| Op::Get { thread: 0, len: 256, whole: true }));
        program.extend((0..12).map(|_| Op::Release { thread: 1, buf: 0 }));
        run(&program);
    }

    #[test]
    fn growth_across_threads_then_flush_and_trim() {
        run(&[
            Op::WithCapacity { thread: 0, capacity: 10 },
            Op::Append { thread: 1, buf: 0, len: 300, seed: 1 },
            Op::Append { thread: 0, buf: 0, len: 900, seed: 2 },
            Op::Release { thread: 1, buf: 0 },
            Op::Flush { thread: 1 },
            Op::Get { thread: 0, len: 1500, whole: true },
            Op::Trim { thread: 0 },
            Op::Release { thread: 0, buf: 0 },
        ]);
    }

    /// The paths issues 16, 18 and 19 added: a read into the spare capacity
    /// of a buffer that was filled and truncated (the reader must see only
    /// zeroes), reclaims between and after, and objects released on the
    /// other thread, one of them grown past the policy's bound (refused).
    #[test]
    fn read_from_reclaim_and_objects() {
        run(&[
            Op::Get { thread: 0, len: 1000, whole: true },
            Op::Write { buf: 0, seed: 5 },
            Op::Truncate { buf: 0, len: 7 },
            Op::ReadFrom { thread: 1, buf: 0, len: 40, seed: 6 },
            Op::Release { thread: 1, buf: 0 },
            Op::Get { thread: 0, len: 256, whole: true },
            Op::Write { buf: 0, seed: 9 },
            Op::Release { thread: 0, buf: 0 },
            Op::WithCapacity { thread: 0, capacity: 10 },
            Op::ReadFrom { thread: 0, buf: 0, len: 300, seed: 3 },
            Op::Reclaim { thread: 1 },
            Op::GetObject { thread: 0 },
            Op::GetObject { thread: 0 },
            Op::PushObject { obj: 0, len: 200, seed: 1 },
            Op::PushObject { obj: 1, len: 3, seed: 2 },
            Op::ReleaseObject { thread: 1, obj: 0 },
            Op::ReleaseObject { thread: 1, obj: 0 },
            Op::Reclaim { thread: 0 },
            Op::Reclaim { thread: 0 },
            Op::GetObject { thread: 1 },
            Op::Flush { thread: 1 },
            Op::Release { thread: 1, buf: 0 },
        ]);
    }
}
