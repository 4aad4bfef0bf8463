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

/// Every Lambda function: (its crate's folder under functions/, the binary's name).
pub fn functions() -> BenchResult<Vec<(String, String)>> {
    let mut all = Vec::new();
    let folders = std::fs::read_dir(root().join("functions")).map_err(|e| e.to_string())?;
    for folder in folders.flatten() {
        let service = folder.file_name().to_string_lossy().into_owned();
        let Ok(bins) = std::fs::read_dir(folder.path().join("src/bin")) else {
            continue;
        };
        for bin in bins.flatten() {
            let name = bin.file_name().to_string_lossy().into_owned();
            if let Some(name) = name.strip_suffix(".rs") {
                all.push((service.clone(), name.to_owned()));
            }
        }
    }
    all.sort();
    Ok(all)
}

/// The cargo packages that hold the functions, plus the cold-start baseline.
pub fn packages() -> BenchResult<Vec<String>> {
    let mut packages: Vec<String> = functions()?
        .into_iter()
        .map(|(service, _)| format!("{service}-service"))
        .collect();
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
    eprintln!("building every function with the release profile (fat LTO: minutes on 2 cores)…");
    run(&mut build, "cargo build --release")?;
    Ok(root().join("target/release"))
}

pub fn size() -> BenchResult<String> {
    ensure_test_tools()?;
    let venv = root().join(".venv/bin");
    if !venv.join("cargo-lambda").exists() {
        eprintln!("size: installing cargo-lambda and zig into .venv (once)…");
        run(
            Command::new(venv.join("python")).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "cargo-lambda",
                "ziglang",
            ]),
            "pip install cargo-lambda ziglang",
        )?;
    }
    run(
        Command::new("rustup").args(["target", "add", "aarch64-unknown-linux-gnu"]),
        "rustup target add aarch64-unknown-linux-gnu",
    )?;
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
    eprintln!("size: cargo lambda build --release --arm64 (fat LTO: many minutes on 2 cores)…");
    let started = std::time::Instant::now();
    run(&mut build, "cargo lambda build")?;
    let took = started.elapsed();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Size of the release arm64 artefacts\n\n`cargo lambda build --release --arm64 --output-format zip` (built in {:.0} s here).\n",
        took.as_secs_f64()
    );
    let _ = writeln!(out, "| function | binary | zip |");
    let _ = writeln!(out, "| --- | ---: | ---: |");
    let mut rows = functions()?;
    rows.push(("bench".to_owned(), "hello-lambda".to_owned()));
    let megabytes = |p: PathBuf| {
        std::fs::metadata(&p).map_or_else(
            |_| "missing".to_owned(),
            |m| format!("{:.2} MB", m.len() as f64 / 1e6),
        )
    };
    for (_, bin) in rows {
        let binary = root().join(format!("target/aarch64-unknown-linux-gnu/release/{bin}"));
        let zip = root().join(format!("target/lambda/{bin}/bootstrap.zip"));
        let _ = writeln!(
            out,
            "| {bin} | {} | {} |",
            megabytes(binary),
            megabytes(zip)
        );
    }
    let _ = writeln!(out);
    Ok(out)
}
