//! Desktop figures for the release app under Xvfb: cold start to a ready window, idle
//! memory of the app with its WebKit processes, the time from a second launch with a link
//! to the reset page checking that link (and having its answer: whose link it is), and the
//! binary's size; then the same connected to a release `rekeyd` over HTTPS on this machine,
//! and a confirm's round trip through the app's commands against a bare HTTP call to the
//! same endpoint.
//!
//! `cargo bench --bench desktop`. "Ready" is when the page's script asks the shell for
//! `app_info`, the first thing it does before it draws the sign-in page; "reset page shown"
//! is when the page asks about the link it was handed. Both are lines the app logs at
//! `info`, read from its stderr as they arrive.

#[path = "../tests/common/app.rs"]
mod app;
#[path = "../tests/common/desktop.rs"]
mod desktop;
#[path = "../crates/rekeyd/tests/common/server.rs"]
mod server;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use desktop::{app_binary, Desktop};
use rekey_testkit::figures::record;

const RUNS: usize = 5;

/// The app, started with `args`, and a channel of (line, arrival time) from its stderr.
fn start(desktop: &Desktop, args: &[&str]) -> (Child, mpsc::Receiver<(String, Instant)>) {
    let mut child = desktop
        .command(app_binary())
        .args(args)
        .env("REKEY_LOG", "rekey_desktop=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the app starts");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send((line, Instant::now())).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn wait_for(rx: &mpsc::Receiver<(String, Instant)>, needle: &str) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((line, at)) if line.contains(needle) => return at,
            Ok(_) => {}
            Err(_) => panic!("the app never logged '{needle}'"),
        }
    }
}

fn stop(mut child: Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The process and all its descendants (WebKit's web and network processes).
fn family(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces; the fields after its closing parenthesis do not.
        let after = &stat[stat.rfind(')').unwrap_or(0) + 2..];
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        all.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    all
}

/// (RSS, PSS) in MiB, summed over the processes. PSS shares shared pages out fairly.
fn memory(pids: &[u32]) -> (f64, f64) {
    let mut rss = 0u64;
    let mut pss = 0u64;
    for pid in pids {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        for line in text.lines() {
            let kib = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("Rss:") {
                rss += kib(line);
            } else if line.starts_with("Pss:") {
                pss += kib(line);
            }
        }
    }
    (rss as f64 / 1024.0, pss as f64 / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A reset link for a fresh account in `desktop`'s data directory, made with the core
/// itself (mail into the local mailbox), which is closed again before the app starts.
fn fresh_link(desktop: &Desktop, n: usize) -> String {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let flags = [
            ("data_dir", desktop.data_dir().display().to_string()),
            ("argon2_memory_kib", "8192".to_string()),
            ("argon2_iterations", "1".to_string()),
            ("limit_client", "off".to_string()),
        ];
        let config = rekey_core::Config::from_layers(None, None, &[], &flags).unwrap();
        let core = rekey_core::Rekey::open(config, "the desktop benchmark").unwrap();
        let email = format!("bench{n}@example.com");
        core.create_account(&email, "quiet river under the old mill", None, "bench")
            .await
            .unwrap();
        core.request_reset(&email, "bench").await.unwrap();
        core.drain().await.unwrap();
        core.steps().flush().await.unwrap();
    });
    let mailbox = desktop.data_dir().join("mailbox");
    let mut names: Vec<_> = std::fs::read_dir(&mailbox)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    names.sort();
    // The file is MIME (quoted-printable): read its text part as a mail program would.
    let raw = std::fs::read(names.last().unwrap()).unwrap();
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = message.body_text(0).unwrap().into_owned();
    let at = text.find("rekey://reset?token=").unwrap();
    text[at..].split_whitespace().next().unwrap().to_string()
}

/// The organisation's server for the connected runs: a release `rekeyd` over HTTPS with a
/// test CA, production argon2, limits lifted so the server, not the limiter, is measured.
struct Org {
    smtp: rekey_testkit::SmtpCapture,
    ca: rekey_testkit::TestCa,
    server: server::Server,
    _dir: tempfile::TempDir,
}

impl Org {
    fn start() -> Org {
        let dir = tempfile::tempdir().unwrap();
        let ca = rekey_testkit::TestCa::new(&dir.path().join("tls"));
        let smtp = rekey_testkit::SmtpCapture::start();
        let setup = server::Setup {
            tls: Some((ca.server_cert().to_path_buf(), ca.server_key().to_path_buf())),
            ..server::Setup::default()
        }
        .with("REKEY_ARGON2_MEMORY_KIB", "19456")
        .with("REKEY_ARGON2_ITERATIONS", "2")
        .with("REKEY_LIMIT_CLIENT", "off")
        .with("REKEY_LIMIT_ADDRESS", "off")
        .with("REKEY_LIMIT_REGISTER_CLIENT", "off");
        let server = server::Server::start(&dir.path().join("data"), Some(&smtp), setup);
        Org {
            smtp,
            ca,
            server,
            _dir: dir,
        }
    }

    /// Reset tokens for `n` fresh accounts, asked for and read from the mail.
    fn tokens(&self, tag: &str, n: usize) -> Vec<String> {
        let emails: Vec<String> = (0..n).map(|i| format!("{tag}{i}@example.com")).collect();
        self.server
            .create_accounts(Some(&self.smtp), &emails, "quiet river under the old mill");
        let http = self.server.http();
        for email in &emails {
            http.post(self.server.url("/users/password/forgot"))
                .json(&serde_json::json!({ "email": email }))
                .send()
                .unwrap();
        }
        emails
            .iter()
            .map(|e| {
                self.smtp
                    .wait_for_mail(e, "Reset your", 1, Duration::from_secs(60))
                    .remove(0)
                    .reset_token()
            })
            .collect()
    }
}

/// Cold start, idle memory and link hand-over (to the page having whose link it is), `RUNS`
/// times; `link` makes the run's link.
fn runs(desktop: &Desktop, mut link: impl FnMut(usize) -> String) -> (Vec<f64>, Vec<(f64, f64)>, Vec<f64>) {
    let (mut cold, mut idle, mut handover) = (Vec::new(), Vec::new(), Vec::new());
    // One start to warm the disk cache and register the scheme; not counted.
    let (child, rx) = start(desktop, &[]);
    wait_for(&rx, "window ready");
    stop(child);
    for run in 0..RUNS {
        let link = link(run);
        let spawned = Instant::now();
        let (child, rx) = start(desktop, &[]);
        cold.push(wait_for(&rx, "window ready").duration_since(spawned).as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_secs(5));
        idle.push(memory(&family(child.id())));
        let launched = Instant::now();
        let second = desktop.launch(&[&link]);
        assert!(second.status.success(), "{second:?}");
        handover.push(
            wait_for(&rx, "reset page has its link's answer")
                .duration_since(launched)
                .as_secs_f64()
                * 1000.0,
        );
        stop(child);
    }
    (cold, idle, handover)
}

/// A confirm's round trip through the app's commands (connected), against a bare HTTP call
/// to the same endpoint, alternating, each with its own fresh token: (app, bare) in ms.
fn confirm_round_trips(org: &Org, n: usize) -> (Vec<f64>, Vec<f64>) {
    let tokens = org.tokens("confirm", 2 * n);
    let dir = tempfile::tempdir().unwrap();
    let mut config = app::config(&dir.path().join("data"), None);
    config.server_url = Some(org.server.url("").parse().unwrap());
    config.server_ca_file = Some(org.ca.ca_pem().to_path_buf());
    let app = app::App::with_shell(dir, |_| Ok(config));
    let http = org.server.http();
    let (mut through_app, mut bare) = (Vec::new(), Vec::new());
    for pair in tokens.chunks(2) {
        let started = Instant::now();
        app.ok(
            "confirm_reset",
            serde_json::json!({"token": pair[0], "newPassword": "lanterns drift past the harbour wall"}),
        );
        through_app.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        let r = http
            .post(org.server.url("/users/password/reset"))
            .json(&serde_json::json!({"token": pair[1], "new_password": "lanterns drift past the harbour wall"}))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        bare.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    (through_app, bare)
}

fn main() {
    let binary = app_binary();
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0;
    let mut desktop = Desktop::start();
    desktop.set("REKEY_LIMIT_CLIENT", "off");

    let (cold, idle, handover) = runs(&desktop, |run| fresh_link(&desktop, run));

    // Connected to a release rekeyd over HTTPS on this machine.
    let org = Org::start();
    let mut connected = Desktop::start();
    connected.set("REKEY_SERVER_URL", org.server.url(""));
    connected.set("REKEY_SERVER_CA_FILE", org.ca.ca_pem().display().to_string());
    let links = org.tokens("handover", RUNS);
    let (c_cold, c_idle, c_handover) = runs(&connected, |run| format!("rekey://reset?token={}", links[run]));
    let (through_app, bare) = confirm_round_trips(&org, 20);
    println!("\nRekey desktop, release build, under Xvfb; medians of {RUNS} runs\n");
    println!("| figure | median | runs |");
    println!("|---|---|---|");
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ");
    // Each line of the table, also recorded for `scripts/bench` (as a median of RUNS runs).
    let line = |figure: &str, unit: &str, v: &[f64]| {
        let m = median(v.to_vec());
        println!("| {figure} ({unit}) | {m:.0} | {} |", list(v));
        record(
            "desktop",
            &format!("{figure}, median of {RUNS}"),
            &format!("{m:.0} {unit}"),
            "",
            None,
        );
    };
    line("cold start to ready window", "ms", &cold);
    let rss: Vec<f64> = idle.iter().map(|m| m.0).collect();
    let pss: Vec<f64> = idle.iter().map(|m| m.1).collect();
    line("idle memory, app + WebKit processes, RSS", "MiB", &rss);
    line("idle memory, app + WebKit processes, PSS", "MiB", &pss);
    line(
        "second launch with a link to the reset page knowing whose link it is",
        "ms",
        &handover,
    );
    let c_rss: Vec<f64> = c_idle.iter().map(|m| m.0).collect();
    let c_pss: Vec<f64> = c_idle.iter().map(|m| m.1).collect();
    line("connected: cold start to ready window", "ms", &c_cold);
    line("connected: idle memory, app + WebKit processes, RSS", "MiB", &c_rss);
    line("connected: idle memory, app + WebKit processes, PSS", "MiB", &c_pss);
    line(
        "connected: second launch with a link to the reset page knowing whose link it is",
        "ms",
        &c_handover,
    );
    // Ratios, both sides measured in this run.
    let ratio = |figure: &str, ours: &[f64], base: &[f64], base_name: &str| {
        let (o, b) = (median(ours.to_vec()), median(base.to_vec()));
        println!("| {figure} | {:.2}× | {o:.1} vs {b:.1} ms ({base_name}) |", o / b);
        record(
            "desktop",
            figure,
            &format!("{o:.1} ms"),
            &format!("{base_name} {b:.1} ms"),
            Some(o / b),
        );
    };
    ratio(
        "link hand-over to whose link, connected vs this computer",
        &c_handover,
        &handover,
        "this computer",
    );
    ratio(
        "confirm round trip through the app vs a bare HTTP call",
        &through_app,
        &bare,
        "bare reqwest",
    );
    let mem = |figure: &str, ours: &[f64], base: &[f64]| {
        let (o, b) = (median(ours.to_vec()), median(base.to_vec()));
        println!("| {figure} | {:.2}× | {o:.0} vs {b:.0} MiB |", o / b);
        record(
            "desktop",
            figure,
            &format!("{o:.0} MiB"),
            &format!("this computer {b:.0} MiB"),
            Some(o / b),
        );
    };
    mem("idle memory (PSS), connected vs this computer", &c_pss, &pss);
    println!("| release binary size (MiB) | {size:.1} | {} |", binary.display());
    record("desktop", "release binary size", &format!("{size:.1} MiB"), "", None);
    let stripped = std::env::temp_dir().join("rekey-stripped");
    let ok = std::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&binary)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let mib = std::fs::metadata(&stripped).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0;
        println!("| release binary size, stripped (MiB) | {mib:.1} | strip -o |");
        record(
            "desktop",
            "release binary size, stripped",
            &format!("{mib:.1} MiB"),
            "",
            None,
        );
    }
}
