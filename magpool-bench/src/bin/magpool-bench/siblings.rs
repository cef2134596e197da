//! Finding the binary each child runs in: this one for the system allocator,
//! `magpool-bench-jemalloc` and `magpool-bench-mimalloc` (beside it) for the
//! implementations that need that global allocator.
//!
//! `cargo run` builds only the binary it runs, so a sibling may be missing,
//! or older than this binary and built from other code. When started by
//! cargo (which sets `CARGO`), the report builds the siblings it needs with
//! the same profile and target directory; otherwise it says how to.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use magpool_bench::child::Global;

/// The binary of each global allocator the run needs.
#[derive(Debug)]
pub(crate) struct Executables {
    this: PathBuf,
    jemalloc: Option<PathBuf>,
    mimalloc: Option<PathBuf>,
}

impl Executables {
    /// This binary, and a current sibling for each of `globals` but the
    /// system allocator, building them if it can.
    pub(crate) fn find(globals: impl IntoIterator<Item = Global>) -> Result<Executables, String> {
        let this = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut needed: Vec<Global> = Vec::new();
        for g in globals {
            if g != Global::System && !needed.contains(&g) {
                needed.push(g);
            }
        }
        let stale: Vec<Global> = needed.iter().copied().filter(|g| !current(&this, &sibling(&this, *g))).collect();
        if !stale.is_empty() {
            build(&this, &stale)?;
        }
        let mut exes = Executables { this: this.clone(), jemalloc: None, mimalloc: None };
        for g in needed {
            let path = sibling(&this, g);
            if !current(&this, &path) {
                return Err(format!("{} is missing or older than {}", path.display(), this.display()));
            }
            match g {
                Global::Jemalloc => exes.jemalloc = Some(path),
                Global::Mimalloc => exes.mimalloc = Some(path),
                Global::System => {}
            }
        }
        Ok(exes)
    }

    /// The binary whose global allocator is `g`.
    ///
    /// # Panics
    ///
    /// When `find` was not asked for `g`.
    pub(crate) fn get(&self, g: Global) -> &Path {
        let sibling = match g {
            Global::System => return &self.this,
            Global::Jemalloc => &self.jemalloc,
            Global::Mimalloc => &self.mimalloc,
        };
        sibling.as_deref().expect("found for every implementation of the run")
    }
}

fn sibling(this: &Path, g: Global) -> PathBuf {
    this.with_file_name(format!("{}{}", g.binary(), std::env::consts::EXE_SUFFIX))
}

/// Whether `path` exists and was built no earlier than `this`.
fn current(this: &Path, path: &Path) -> bool {
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
    path.exists() && modified(path) >= modified(this)
}

/// `cargo build` of the `stale` siblings, in this binary's profile.
fn build(this: &Path, stale: &[Global]) -> Result<(), String> {
    let profile = match this.parent().and_then(Path::file_name).and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(dir) => dir.to_string(),
        None => "release".to_string(),
    };
    let mut args = vec!["build".to_string(), "-p".into(), "magpool-bench".into(), "--profile".into(), profile];
    for g in stale {
        args.push("--bin".into());
        args.push(g.binary().into());
    }
    let Ok(cargo) = std::env::var("CARGO") else {
        return Err(format!("{} needs building first: cargo {}", stale[0].binary(), args.join(" ")));
    };
    eprintln!("magpool-bench: building the children on other global allocators: cargo {}", args.join(" "));
    let status = Command::new(&cargo).args(&args).status().map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("cargo {} failed ({status})", args.join(" ")));
    }
    // A no-op build leaves an up-to-date sibling's time as it was: its code
    // is this binary's, so it is current.
    for g in stale {
        let path = sibling(this, *g);
        let touched = std::fs::File::options().append(true).open(&path).and_then(|f| f.set_modified(SystemTime::now()));
        touched.map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
