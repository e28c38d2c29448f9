//! The API's OpenAPI document, checked the way someone adopting Rekey would use it: the
//! committed docs/openapi.json is what a running `rekeyd serve` serves at /openapi.json, it
//! describes every route the README lists, and the server keeps to it under Schemathesis
//! (generated requests for every operation; the stateful chains register → verify → sign in
//! and forgot → reset, driven with the token and code from the mail).
//!
//! Schemathesis lives in `.venv-schemathesis` at the workspace root, made by
//! `scripts/setup-debian` (or `REKEY_SCHEMATHESIS_VENV`). `REKEY_SCHEMATHESIS_EXAMPLES` sets
//! the examples per operation: a few here, many in `scripts/bench`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::server::{Server, Setup};
use serde_json::Value;

const REGENERATE: &str = "cargo run -p rekeyd -- openapi > docs/openapi.json";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn served_document(server: &Server) -> String {
    let response = server.http().get(server.url("/openapi.json")).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "/openapi.json is JSON"
    );
    response.text().unwrap()
}

#[test]
fn docs_openapi_json_is_what_the_server_serves() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None, Setup::default());
    let served = served_document(&server);
    let path = workspace().join("docs/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != served {
        let line = committed
            .lines()
            .zip(served.lines())
            .position(|(a, b)| a != b)
            .map_or(committed.lines().count().min(served.lines().count()), |i| i)
            + 1;
        panic!(
            "docs/openapi.json is not what `rekeyd serve` serves at /openapi.json (first difference at line {line}); \
             regenerate it with `{REGENERATE}` and commit it"
        );
    }
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
}

/// Every `| \`METHOD /path\` |` row of the README's route table is an operation of the
/// document, with a refusal schema for each of its 4xx and 5xx answers.
#[test]
fn the_document_describes_every_route_the_readme_lists() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), None, Setup::default());
    let doc: Value = serde_json::from_str(&served_document(&server)).unwrap();
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let routes: Vec<(String, String)> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(route, _)| route))
        .filter_map(|route| route.split_once(' '))
        .filter(|(method, path)| ["GET", "POST", "DELETE"].contains(method) && path.starts_with('/'))
        .map(|(m, p)| (m.to_lowercase(), p.to_string()))
        .collect();
    assert!(routes.len() >= 14, "the README's route table: {routes:?}");
    for (method, path) in &routes {
        let operation = &doc["paths"][path][method];
        assert!(
            operation.is_object(),
            "{method} {path} is in the README but not in the document"
        );
        for (status, answer) in operation["responses"].as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                let codes = &answer["content"]["application/json"]["schema"]["properties"]["code"]["enum"];
                assert!(
                    codes.as_array().is_some_and(|c| !c.is_empty()),
                    "{method} {path} {status}: no codes listed"
                );
            }
        }
    }
}

/// The venv with Schemathesis, made by scripts/setup-debian.
fn venv() -> PathBuf {
    let venv = std::env::var_os("REKEY_SCHEMATHESIS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv-schemathesis"));
    assert!(
        venv.join("bin/schemathesis").exists(),
        "no Schemathesis in {}: run scripts/setup-debian (it makes .venv-schemathesis), or set REKEY_SCHEMATHESIS_VENV",
        venv.display()
    );
    venv
}

/// A server whose rate limits Schemathesis does not reach (a 429 is still a documented
/// answer, but a run that sees nothing else tests nothing), mail in its local mailbox.
fn generous_server(data: &Path) -> Server {
    let mut setup = Setup::default();
    for key in [
        "ADDRESS",
        "CLIENT",
        "REGISTER_CLIENT",
        "CODE_CLIENT",
        "CODE_ADDRESS",
        "STRENGTH",
        "SIGNIN_ACCOUNT",
        "SIGNIN_CLIENT",
        "SIGNIN_SPRAY",
    ] {
        setup = setup.with(&format!("REKEY_LIMIT_{key}"), "1000000/1m");
    }
    Server::start(data, None, setup)
}

fn run(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    text
}

#[test]
fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let venv = venv();
    let examples = std::env::var("REKEY_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "15".into());
    let dir = tempfile::tempdir().unwrap();
    let server = generous_server(&dir.path().join("data"));
    // The document as served, from a file: given its URL, Schemathesis leaves out the
    // operation that serves it.
    let served = served_document(&server);
    let doc: Value = serde_json::from_str(&served).unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    let document = dir.path().join("openapi.json");
    std::fs::write(&document, served).unwrap();
    let started = Instant::now();
    let report = run(
        Command::new(venv.join("bin/schemathesis"))
            .current_dir(dir.path())
            .arg("run")
            .arg(&document)
            .args(["--url", &server.url("")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_headers_conformance,response_schema_conformance,negative_data_rejection",
                "--max-examples",
                &examples,
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--no-color",
            ]),
        "schemathesis run",
    );
    let took = started.elapsed();
    // "  538 generated, 538 passed"
    let cases = report
        .lines()
        .find_map(|l| l.trim().split_once(" generated, ").map(|(n, _)| n.to_string()))
        .unwrap_or_else(|| "?".into());
    println!("{report}");
    let tested = format!("{operations} selected / {operations} total");
    assert!(
        report.contains(&tested),
        "every operation is tested ({tested}):\n{report}"
    );
    println!("schemathesis: {cases} test cases, {examples} examples per operation, {took:.1?}");
    rekey_testkit::figures::record(
        "schemathesis",
        &format!("test cases ({examples} examples per operation)"),
        &format!("{cases} in {:.1} s", took.as_secs_f64()),
        "",
        None,
    );
    assert!(!server.log_text().contains("panicked"), "{}", server.log_text());
}

#[test]
fn the_chains_keep_to_the_document_with_the_mailed_token_and_code() {
    let venv = venv();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = generous_server(&data);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis/chains.py");
    let text = run(
        Command::new(venv.join("bin/python"))
            .arg(&script)
            .arg(server.url(""))
            .arg(data.join("mailbox")),
        "tests/schemathesis/chains.py",
    );
    assert!(text.contains("every answer as documented"), "{text}");
}

/// Two windows change the password with one session at once: one wins, and each of the
/// others gets an answer the document lists for that operation (its session ended, or its
/// `current` is no longer the password), never a refusal that talks about links.
#[test]
fn racing_password_changes_get_a_documented_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = generous_server(&dir.path().join("data"));
    let passwords = ["quiet river under the old mill", "lanterns swaying over the harbour"];
    server.create_accounts(None, &["race@example.com".to_string()], passwords[0]);
    let http = server.http();
    for round in 0..6 {
        let (current, new) = (passwords[round % 2], passwords[(round + 1) % 2]);
        let session: Value = http
            .post(server.url("/sessions"))
            .json(&serde_json::json!({"email": "race@example.com", "password": current}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let session = session["token"].as_str().unwrap().to_string();
        let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let changes: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let r = http
                            .post(server.url("/sessions/current/password"))
                            .bearer_auth(&session)
                            .json(&serde_json::json!({"current": current, "new_password": new}))
                            .send()
                            .unwrap();
                        (r.status().as_u16(), r.json::<Value>().unwrap())
                    })
                })
                .collect();
            changes.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let won = answers.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(won, 1, "round {round}: {answers:?}");
        for (status, body) in &answers {
            let code = body["code"].as_str().unwrap_or_default();
            assert!(
                *status == 200 || (*status == 401 && ["session_invalid", "bad_credentials"].contains(&code)),
                "round {round}: a racing change got {status} {body}"
            );
        }
    }
}
