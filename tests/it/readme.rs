//! The examples of the README and of the guide in `docs/`, run as written, so they
//! cannot drift from the binary.
//!
//! The fenced blocks are read from `README.md` and every `docs/**/*.md` when the tests
//! run: editing an example changes what is tested. Every `sh` block runs with `sh -e`
//! (any failing command fails the test) in one temp folder, in order — the README first,
//! then the pages of `docs/` by path — as a reader following them from the quick start
//! would: the agent runs there with no settings at all (so `./data`, `./processed`,
//! `./quarantine` and SQLite in `./sensor-ingest.db`), the folder holds the
//! repository's `examples/` as a fresh clone does, `sensor-ingest` is on `PATH`, and
//! `$EDITOR` fixes the file it is given. Every `sql` block runs with
//! `psql -v ON_ERROR_STOP=1` against a fresh PostgreSQL database the agent has loaded.
//!
//! `text` and `json` blocks show output and are not run. `toml` and `csv` blocks show a
//! file of the repository, named after the language (```` ```toml examples/profiles/x.toml ````),
//! and must be that file to the byte (the files themselves are loaded by
//! `profile_examples`). A block in any other language fails the test until it is tagged. A `sh` or `sql` block that
//! cannot run here is skipped by [`skip_reason`], which names each rule (`no_run` in the
//! info string, or a program of [`NOT_RUN`]); every block's fate is printed
//! (`cargo test --test it readme -- --nocapture`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::binary::{database_url, deliver, entries, read_log, signal, wait_exit};
use crate::common::{Backend, TestEnv, env_or_skip, eventually, in_ci, postgres_required};

/// One fenced block of a page.
#[derive(Debug)]
struct Block {
    /// The page, relative to the repository (`README.md`, `docs/profiles.md`).
    file: String,
    /// Line of the opening fence, for messages.
    line: usize,
    /// The info string's first word: `sh`, `sql`, `text`, …
    lang: String,
    /// The info string's other words (`sh,no_run` or `sh no_run`).
    flags: Vec<String>,
    text: String,
}

/// The pages whose blocks are tested, relative to the repository: `README.md`, then
/// every Markdown file under `docs/`, by path.
fn pages() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = Vec::new();
    walk(&root.join("docs"), &mut docs);
    docs.sort();
    std::iter::once("README.md".to_owned())
        .chain(
            docs.iter()
                .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned()),
        )
        .collect()
}

/// Every fenced block of every page, in order.
fn all_blocks() -> Vec<Block> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for page in pages() {
        let path = root.join(&page);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.extend(blocks(&page, &text));
    }
    out
}

/// Every fenced block of `markdown` (the page `file`), in order.
fn blocks(file: &str, markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            if let Some(b) = open.as_mut() {
                b.text.push_str(line);
                b.text.push('\n');
            }
            continue;
        };
        match open.take() {
            Some(b) => out.push(b),
            None => {
                let mut words = info
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned);
                open = Some(Block {
                    file: file.to_owned(),
                    line: i + 1,
                    lang: words.next().unwrap_or_default(),
                    flags: words.collect(),
                    text: String::new(),
                });
            }
        }
    }
    assert!(open.is_none(), "{file} has an unclosed code fence");
    out
}

/// Programs whose examples are not run here, and why.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "cargo",
        "builds from source; the tests run the built binary instead",
    ),
    ("sudo", "installs a system service"),
    ("sudoedit", "installs a system service"),
    ("systemctl", "installs a system service"),
    ("bench/run", "a benchmark: minutes long, not a test"),
    ("scripts/crash-soak", "a long soak, run on demand"),
];

/// The program each command of a shell script starts with (after `VAR=value`
/// assignments); comments, continuation lines and lines inside quotes left out.
fn programs(script: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut continued, mut quote) = (false, None);
    for line in script.lines() {
        let code = line.split(" #").next().unwrap_or("").trim();
        if !continued && quote.is_none() && !code.starts_with('#') {
            let program = code.split_whitespace().find(|w| !w.contains('='));
            out.extend(program);
        }
        for c in code.chars() {
            match quote {
                None if c == '"' || c == '\'' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ => {}
            }
        }
        continued = code.ends_with('\\');
    }
    out
}

/// The languages of the pages' fenced blocks: commands that run, and output shown.
const COMMANDS: &[&str] = &["sh", "sql"];
const OUTPUT: &[&str] = &["text", "json"];
const FILES: &[&str] = &["toml", "csv"];

/// Why a `sh` or `sql` block is not run, or `None` when it is: it is marked `no_run`,
/// or it is a shell block that runs one of the programs of [`NOT_RUN`].
fn skip_reason(block: &Block) -> Option<String> {
    if block.flags.iter().any(|f| f == "no_run") {
        return Some("marked no_run".to_owned());
    }
    if block.lang == "sh" {
        for program in programs(&block.text) {
            if let Some((p, why)) = NOT_RUN.iter().find(|(p, _)| *p == program) {
                return Some(format!("runs `{p}`: {why}"));
            }
        }
    }
    None
}

/// The pages' blocks in `lang` that run; each block of `lang` is printed with its fate.
fn runnable(lang: &str) -> Vec<Block> {
    let mut run = Vec::new();
    for block in all_blocks() {
        assert!(
            COMMANDS.contains(&block.lang.as_str())
                || OUTPUT.contains(&block.lang.as_str())
                || FILES.contains(&block.lang.as_str()),
            "{}:{}: a `{}` block; tag it {COMMANDS:?} to have it run here, \
             {OUTPUT:?} for output, or {FILES:?} with the file it shows",
            block.file,
            block.line,
            block.lang
        );
        if block.lang != lang {
            continue;
        }
        match skip_reason(&block) {
            Some(why) => eprintln!("{}:{} ({lang}): skipped, {why}", block.file, block.line),
            None => {
                eprintln!("{}:{} ({lang}): runs", block.file, block.line);
                run.push(block);
            }
        }
    }
    run
}

/// Whether `program` is on `PATH`.
fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Runs `cmd` (stdout and stderr into files in `dir`), failing the test with `what`,
/// its output and `context` unless it exits 0 within a minute.
async fn must_succeed(mut cmd: Command, dir: &Path, what: &str, context: impl Fn() -> String) {
    let (out, err) = (dir.join("example.out"), dir.join("example.err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("the example's interpreter starts");
    let status = wait_exit(&mut child, Duration::from_secs(60)).await;
    assert!(
        status.success(),
        "{what} failed ({status}):\nstdout:\n{}\nstderr:\n{}\n{}",
        read_log(&out),
        read_log(&err),
        context()
    );
}

/// Copies the folder `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// An `$EDITOR` that fixes the quarantined example file the way an operator would: the
/// temperature `hot` becomes a number.
const EDITOR: &str = "#!/bin/sh\nsed -i 's/,hot,/,21.5,/' \"$1\"\n";

/// The quarantined file the Quarantine review works on (`bad.csv` there).
const BAD_CSV: &str =
    "timestamp,sensor_id,temperature,humidity,pressure\n2024-05-01T13:00:00Z,s-2,hot,40,1013\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_shell_examples_run_against_the_real_binary() {
    let blocks = runnable("sh");
    assert!(
        blocks.len() >= 3,
        "expected the quick start, the sqlite3 queries and the quarantine review; \
         found {blocks:#?}"
    );
    if !installed("sqlite3") {
        assert!(
            !in_ci(),
            "CI needs the sqlite3 shell for the examples of the README and docs/"
        );
        eprintln!("SKIPPED: the sqlite3 examples of the README and docs/ need the sqlite3 shell");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (home, bin) = (tmp.path().join("home"), tmp.path().join("bin"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    // The tour copies an export from the clone's examples/.
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        &home.join("examples"),
    );
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_sensor-ingest"),
        bin.join("sensor-ingest"),
    )
    .unwrap();
    let editor = bin.join("fix-in-place");
    std::fs::write(&editor, EDITOR).unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    // What the reader's shell has: no settings of ours, the binary on PATH, an editor.
    let shell = |program: &str| {
        let mut cmd = Command::new(program);
        cmd.current_dir(&home)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", &home)
            .env("EDITOR", &editor);
        cmd
    };

    // The quick start's `cargo run --release`: the agent with every setting at its
    // default, so SQLite in ./sensor-ingest.db and the three folders under ./.
    let log = tmp.path().join("agent.log");
    let mut agent = shell("sensor-ingest")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the agent starts");
    let data = home.join("data");
    let ready = eventually(Duration::from_secs(30), async || {
        ["data", "processed", "quarantine"]
            .iter()
            .all(|d| home.join(d).is_dir())
    })
    .await;
    assert!(ready, "the agent made no folders:\n{}", read_log(&log));
    // The file the Quarantine review examines.
    assert!(deliver(
        &tmp.path().join("staging"),
        &data,
        "bad.csv",
        BAD_CSV.as_bytes()
    ));
    let quarantined = eventually(Duration::from_secs(30), async || {
        home.join("quarantine/bad.csv").exists()
    })
    .await;
    assert!(
        quarantined,
        "bad.csv was not quarantined:\n{}",
        read_log(&log)
    );

    for block in &blocks {
        let mut cmd = shell("sh");
        cmd.arg("-e").arg("-c").arg(&block.text);
        let what = format!(
            "the sh example at {}:{}:\n{}",
            block.file, block.line, block.text
        );
        must_succeed(cmd, tmp.path(), &what, || read_log(&log)).await;
        // Whatever an example put into data/, the agent takes before the next one.
        let settled = eventually(Duration::from_secs(30), async || entries(&data).is_empty()).await;
        assert!(
            settled,
            "after {what}\ndata/ still holds {:?}",
            entries(&data)
        );
    }

    // The promises the examples make in their comments.
    let processed = entries(&home.join("processed"));
    assert!(
        processed.contains(&"first.csv".to_owned()),
        "quick start: first.csv is moved to processed/ once loaded; processed/ holds \
         {processed:?}\n{}",
        read_log(&log)
    );
    assert!(
        processed.contains(&"KDEN_2024-01.csv".to_owned()),
        "the tour: the airport export refused, then loaded through its suggested profile; \
         processed/ holds {processed:?}\n{}",
        read_log(&log)
    );
    assert!(
        processed.contains(&"bad.csv".to_owned()),
        "quarantine review: the fixed bad.csv goes back into data/ and is loaded; \
         processed/ holds {processed:?}\n{}",
        read_log(&log)
    );
    // "Stop the agent with Ctrl-C: it finishes the files in progress and exits 0."
    signal(&agent, libc::SIGINT);
    let status = wait_exit(&mut agent, Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(0), "{}", read_log(&log));
}

#[tokio::test]
async fn the_readme_sql_examples_run_on_postgresql() {
    let blocks = runnable("sql");
    assert!(
        !blocks.is_empty(),
        "the README and docs/ have no PostgreSQL queries"
    );
    let env = env_or_skip!(TestEnv::new(Backend::Postgres));
    if !installed("psql") {
        assert!(!postgres_required(), "the SQL examples of docs/ need psql");
        eprintln!("SKIPPED: the SQL examples of docs/ need psql");
        return;
    }
    // Readings for the examples to find: sensor s-1 (the one they ask about), an hour
    // apart, with an extra column.
    env.drop_file(
        "first.csv",
        "timestamp,sensor_id,temperature,humidity,pressure,room\n\
         2024-05-01T12:00:00Z,s-1,21.5,40,1013,kitchen\n\
         2024-05-01T13:00:00Z,s-1,22.5,41,1012,kitchen\n\
         2024-05-01T13:00:00Z,s-2,19.0,50,1011,hall\n",
    );
    let out = crate::common::binary::command(&env, &["once"])
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let url = database_url(env.db.pg(), None);
    for block in &blocks {
        let script: PathBuf = env.dir.path().join("example.sql");
        std::fs::write(&script, &block.text).unwrap();
        let mut cmd = Command::new("psql");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(&script)
            .arg(&url);
        let what = format!(
            "the sql example at {}:{}:\n{}",
            block.file, block.line, block.text
        );
        must_succeed(cmd, env.dir.path(), &what, String::new).await;
    }
}

/// Every `toml` and `csv` block is the file it names, to the byte, so the worked
/// examples are the files the tests load.
#[test]
fn the_readme_files_are_the_repository_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut shown = 0;
    for block in all_blocks() {
        if !FILES.contains(&block.lang.as_str()) {
            continue;
        }
        let name = block.flags.first().unwrap_or_else(|| {
            panic!(
                "{}:{}: name the file the block shows",
                block.file, block.line
            )
        });
        let path = root.join(name);
        let file = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}:{}: {}: {e}", block.file, block.line, path.display()));
        // A Windows-1252 example (a European Excel export) is shown decoded.
        let file = match String::from_utf8(file) {
            Ok(text) => text,
            Err(e) => encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(e.as_bytes())
                .0
                .into_owned(),
        };
        assert_eq!(
            block.text, file,
            "{}:{}: the block differs from {name}",
            block.file, block.line
        );
        shown += 1;
    }
    assert!(
        shown >= 6,
        "the Profiles section shows three profiles and their files"
    );
}

#[test]
fn fences_are_found_with_their_language_and_flags() {
    let md = "text\n```sh\necho a\n```\n\n```sh,no_run\nx \\\n  cargo\n```\n```\nplain\n```\n";
    let found = blocks("x.md", md);
    assert_eq!(found.len(), 3);
    assert_eq!((found[0].line, found[0].lang.as_str()), (2, "sh"));
    assert_eq!(found[0].text, "echo a\n");
    assert_eq!(found[1].flags, ["no_run"]);
    assert_eq!(skip_reason(&found[1]).as_deref(), Some("marked no_run"));
    assert_eq!(found[2].lang, "");
    assert_eq!(
        programs(
            "A=1 cargo run   # x\n# c\nls \\\n  sudo\nsqlite3 db \"SELECT\n  sudo 1\"\nsh -c 'a\nb'\nok"
        ),
        ["cargo", "ls", "sqlite3", "sh", "ok"]
    );
}

/// Pages the guide's index links to that other branches of this round write (append
/// mode, the S3 source, the MariaDB store, quality flags); a link to one of them is not
/// a broken link while it is missing. Empty this list once they are merged.
const WRITTEN_ELSEWHERE: &[&str] = &[];

/// The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings (outside code blocks).
fn anchors(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

/// Every relative link of the README and the guide names a file of the repository and,
/// for a page, one of its headings: moving a section cannot leave a link behind.
#[test]
fn every_relative_link_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(root.join(&page)).unwrap();
        let mut fenced = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            for link in line.split("](").skip(1).filter(|_| !fenced) {
                let target = link.split([')', ' ']).next().unwrap_or("");
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let dir = Path::new(&page).parent().unwrap();
                let path = if file.is_empty() {
                    PathBuf::from(&page)
                } else {
                    normalize(&dir.join(file))
                };
                let shown = path.to_string_lossy().into_owned();
                if WRITTEN_ELSEWHERE.contains(&shown.as_str()) {
                    continue;
                }
                let full = root.join(&path);
                assert!(full.exists(), "{page}: the link {target} names no file");
                if !anchor.is_empty() && shown.ends_with(".md") {
                    let headings = anchors(&std::fs::read_to_string(&full).unwrap());
                    assert!(
                        headings.iter().any(|h| h == anchor),
                        "{page}: the link {target} names no heading of {shown}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} links found");
}

/// `a/b/../c` as `a/c`, without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn headings_become_github_anchors() {
    assert_eq!(
        slug(" Group commit: small files several to a transaction"),
        "group-commit-small-files-several-to-a-transaction"
    );
    assert_eq!(anchors("# A\n```sh\n# not\n```\n## B c\n"), ["a", "b-c"]);
}
