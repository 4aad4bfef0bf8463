//! Artefact sizes: every function's release arm64 binary and its deployment zip, built the
//! way `sam build` / `cargo lambda build --release --arm64` builds them. Also where the
//! benchmarks find their tools and the functions' binaries.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::shop::BenchResult;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every Lambda function, as `template.yaml` declares it.
pub fn functions() -> BenchResult<Vec<local::template::Function>> {
    local::template::Stack::load()
        .map(|stack| stack.functions)
        .map_err(|e| e.to_string())
}

/// The binaries the functions run (one per service, the authorizer, the relay), each once.
pub fn binaries() -> BenchResult<Vec<String>> {
    let mut binaries: Vec<String> = functions()?.into_iter().map(|f| f.binary).collect();
    binaries.sort();
    binaries.dedup();
    Ok(binaries)
}

/// The cargo packages that hold the binaries (found by their `src/bin/<binary>.rs`), plus
/// the cold-start baseline.
pub fn packages() -> BenchResult<Vec<String>> {
    let mut packages = Vec::new();
    for binary in binaries()? {
        let folders = std::fs::read_dir(root().join("functions")).map_err(|e| e.to_string())?;
        let mut holders: Vec<(PathBuf, String)> = folders
            .flatten()
            .map(|f| {
                let name = format!("{}-service", f.file_name().to_string_lossy());
                (f.path(), name)
            })
            .collect();
        holders.push((root().join("platform"), "platform".to_owned()));
        let (_, package) = holders
            .into_iter()
            .find(|(folder, _)| folder.join(format!("src/bin/{binary}.rs")).exists())
            .ok_or_else(|| format!("no package holds the binary {binary}"))?;
        packages.push(package);
    }
    packages.sort();
    packages.dedup();
    packages.push("hello-lambda".to_owned());
    Ok(packages)
}

pub fn run(command: &mut Command, what: &str) -> BenchResult<()> {
    let status = command
        .current_dir(root())
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// The tests' tools (.venv, and LocalStack in .cache), installed once by the test command's own script.
pub fn ensure_test_tools() -> BenchResult<()> {
    run(
        &mut Command::new(root().join("scripts/install-tools.sh")),
        "scripts/install-tools.sh",
    )
}

/// Builds every function (and the baseline) with the release profile for this machine.
pub fn build_release_here() -> BenchResult<PathBuf> {
    let mut build = Command::new(cargo());
    build.args(["build", "--release", "--bins"]);
    for p in packages()? {
        build.args(["-p", &p]);
    }
    eprintln!("building every function with the release profile (about 4 minutes on 2 cores)…");
    run(&mut build, "cargo build --release")?;
    Ok(root().join("target/release"))
}

pub fn size() -> BenchResult<String> {
    run(
        Command::new(root().join("scripts/install-tools.sh")).arg("--lambda"),
        "scripts/install-tools.sh --lambda",
    )?;
    let venv = root().join(".venv/bin");
    let path = format!(
        "{}:{}",
        venv.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut build = Command::new(venv.join("cargo-lambda"));
    build.env("PATH", path).args([
        "lambda",
        "build",
        "--release",
        "--arm64",
        "--output-format",
        "zip",
    ]);
    for p in packages()? {
        build.args(["-p", &p]);
    }
    eprintln!("size: cargo lambda build --release --arm64 (about 4 minutes on 2 cores)…");
    let started = std::time::Instant::now();
    run(&mut build, "cargo lambda build")?;
    let took = started.elapsed();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Size of the release arm64 artefacts\n\n`cargo lambda build --release --arm64 --output-format zip` (built in {:.0} s here).\n",
        took.as_secs_f64()
    );
    let _ = writeln!(out, "| binary | functions | binary | zip |");
    let _ = writeln!(out, "| --- | ---: | ---: | ---: |");
    let functions = functions()?;
    let mut rows = binaries()?;
    rows.push("hello-lambda".to_owned());
    let megabytes = |p: PathBuf| {
        std::fs::metadata(&p).map_or_else(
            |_| "missing".to_owned(),
            |m| format!("{:.2} MB", m.len() as f64 / 1e6),
        )
    };
    for bin in rows {
        let serves = functions.iter().filter(|f| f.binary == bin).count();
        let binary = root().join(format!("target/aarch64-unknown-linux-gnu/release/{bin}"));
        let zip = root().join(format!("target/lambda/{bin}/bootstrap.zip"));
        let _ = writeln!(
            out,
            "| {bin} | {serves} | {} | {} |",
            megabytes(binary),
            megabytes(zip)
        );
    }
    let _ = writeln!(out);
    Ok(out)
}
