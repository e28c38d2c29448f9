//! The Debian packages that `scripts/package` builds: rekeyd's (the binary, its hardened
//! systemd unit, `/etc/rekey/config.toml` as a conffile) and the desktop app's (the handler of
//! `rekey://` links).
//!
//! The test packages the binaries this `cargo test` built (`scripts/package --no-build`, 15 to
//! 70 s) unless `target/packages/` already holds packages of these very binaries (same build
//! ID) made after the last change to the packaging files. Then:
//! - with `REKEY_TEST_INSTALL=1` (set by `.ci/run`, on a throwaway machine, as root) it installs
//!   both with apt-get, checks them in place, upgrades rekeyd over a changed conffile (kept),
//!   removes them (`dpkg -r`: only the conffile is left) and purges them (nothing left but the
//!   service's data in /var/lib/rekey);
//! - elsewhere it unpacks them with `dpkg-deb -x` into a temporary directory and checks them
//!   there, leaving the machine as it was.
//!
//! Either way: the packages' fields and files, `systemd-analyze verify` and `security` on the
//! unit and its hardening settings one by one, `rekeyd --version`, `rekeyd config check` and
//! `rekeyd serve` run the way the unit runs them (its command line and environment, as an
//! unprivileged user when the test runs as root), and the desktop file (`desktop-file-validate`,
//! `xdg-mime query default x-scheme-handler/rekey` in a private HOME).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

const UNIT: &str = "usr/lib/systemd/system/rekeyd.service";
const CONFIG: &str = "etc/rekey/config.toml";
const DESKTOP_FILE: &str = "usr/share/applications/Rekey.desktop";
/// What the unit must run.
const EXEC_START: &str = "/usr/bin/rekeyd --config /etc/rekey/config.toml --data-dir /var/lib/rekey serve";
/// The unit's hardening: each setting and the value it must have.
const HARDENING: &[(&str, &str)] = &[
    ("DynamicUser", "yes"),
    ("StateDirectory", "rekey"),
    ("ConfigurationDirectory", "rekey"),
    ("UMask", "0077"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("NoNewPrivileges", "yes"),
    ("CapabilityBoundingSet", ""),
    ("AmbientCapabilities", ""),
    ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ("RestrictNamespaces", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("RestrictRealtime", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("ProtectClock", "yes"),
    ("ProtectHostname", "yes"),
    ("SystemCallArchitectures", "native"),
];
/// `systemd-analyze security` rates exposure from 0 (locked down) to 10; "OK" is below 2.
const MAX_EXPOSURE: f64 = 2.0;

#[test]
fn packages_install_check_and_remove() {
    let debs = Debs::ready();
    let install = std::env::var("REKEY_TEST_INSTALL").as_deref() == Ok("1");
    check_fields_and_files(&debs);
    if install {
        installed(&debs);
    } else {
        println!(
            "Checking the packages unpacked (dpkg-deb -x), not installed: REKEY_TEST_INSTALL=1 (.ci/run, \
             on a throwaway machine) installs and removes them."
        );
        unpacked(&debs);
    }
}

/// The two packages, built for the binaries under test.
struct Debs {
    rekeyd: PathBuf,
    app: PathBuf,
    /// The target directory, and whether the binaries are a debug build.
    target: PathBuf,
    debug: bool,
}

impl Debs {
    fn ready() -> Debs {
        let app_bin = PathBuf::from(env!("CARGO_BIN_EXE_rekey"));
        let bin_dir = app_bin.parent().unwrap().to_path_buf();
        let debug = bin_dir.file_name().is_some_and(|n| n == "debug");
        let target = bin_dir.parent().unwrap();
        let out = if debug {
            target.join("packages/debug")
        } else {
            target.join("packages")
        };
        let rekeyd_bin = bin_dir.join("rekeyd");
        assert!(
            rekeyd_bin.exists(),
            "{} is missing: run the whole suite (cargo test --workspace), which builds it",
            rekeyd_bin.display()
        );
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let packaging: Vec<PathBuf> = [
            "packaging/rekeyd/rekeyd.service",
            "packaging/rekeyd/config.toml",
            "packaging/rekey.desktop",
            "packaging/package.json",
            "crates/rekeyd/Cargo.toml",
            "tauri.conf.json",
            "README.md",
            "SECURITY.md",
            "scripts/package",
        ]
        .iter()
        .map(|p| repo.join(p))
        .collect();
        let newest_packaging = packaging.iter().map(|p| modified(p)).max().unwrap();
        let found = |prefix: &str| {
            std::fs::read_dir(&out).ok().and_then(|dir| {
                dir.flatten()
                    .map(|e| e.path())
                    .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
            })
        };
        // A package is reused when it is newer than the packaging files and holds the very
        // binary under test (same GNU build ID: cargo-deb strips, tauri's bundler stamps the
        // binary in place, neither changes the ID; a build with other features has another).
        let holds = |deb: &Path, inside: &str, binary: &Path| packed_build_id(deb, inside) == build_id(binary);
        let fresh = |deb: Option<PathBuf>, inside: &str, binary: &Path| {
            deb.is_some_and(|d| modified(&d) > newest_packaging && holds(&d, inside, binary))
        };
        if fresh(found("rekeyd_"), "usr/bin/rekeyd", &rekeyd_bin) && fresh(found("rekey_"), "usr/bin/rekey", &app_bin) {
            println!(
                "Using the packages in {}: newer than the packaging files, and holding the binaries under test.",
                out.display()
            );
        } else {
            println!(
                "Packaging the binaries in {} (scripts/package --no-build) ...",
                bin_dir.display()
            );
            let started = Instant::now();
            let mut script = Command::new(repo.join("scripts/package"));
            script.arg("--no-build").env("CARGO_TARGET_DIR", target);
            if debug {
                script.arg("--debug");
            }
            let status = script.status().expect("scripts/package runs");
            assert!(
                status.success(),
                "scripts/package --no-build failed ({status}): see its output above"
            );
            println!("Packaged in {:.0?}.", started.elapsed());
        }
        let rekeyd = found("rekeyd_").expect("scripts/package made rekeyd's package");
        let app = found("rekey_").expect("scripts/package made the desktop app's package");
        for (deb, inside, binary) in [
            (&rekeyd, "usr/bin/rekeyd", &rekeyd_bin),
            (&app, "usr/bin/rekey", &app_bin),
        ] {
            assert!(
                holds(deb, inside, binary),
                "{} does not hold {} (another build ID)",
                deb.display(),
                binary.display()
            );
        }
        Debs {
            rekeyd,
            app,
            target: target.to_path_buf(),
            debug,
        }
    }
}

/// The GNU build ID of an ELF binary.
fn build_id(binary: &Path) -> String {
    let notes = ok(Command::new("readelf").arg("-n").arg(binary));
    notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{} has no GNU build ID (readelf -n)", binary.display()))
}

/// The build ID of the binary at `inside` in a package.
fn packed_build_id(deb: &Path, inside: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    ok(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()));
    build_id(&dir.path().join(inside))
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("cannot read the time of {}: {e}", path.display()))
}

/// Runs a command to its end; a command that cannot start is a missing tool.
fn run(cmd: &mut Command) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (scripts/setup-debian installs it)"))
}

/// Runs a command that must succeed and returns its standard output.
fn ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field(deb: &Path, name: &str) -> String {
    ok(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))
        .trim()
        .to_string()
}

fn check_fields_and_files(debs: &Debs) {
    let version = env!("CARGO_PKG_VERSION");
    for (deb, package) in [(&debs.rekeyd, "rekeyd"), (&debs.app, "rekey")] {
        assert_eq!(field(deb, "Package"), package, "{}", deb.display());
        let v = field(deb, "Version");
        assert!(
            v == version || v.starts_with(&format!("{version}-")),
            "{package} is version {v}, not {version}"
        );
        assert_eq!(field(deb, "Architecture"), "amd64");
    }
    // Each file's path, without the leading "./" that cargo-deb writes and tauri does not.
    let contents = |deb: &Path| -> Vec<String> {
        ok(Command::new("dpkg-deb").arg("-c").arg(deb))
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .map(|p| p.trim_start_matches("./").trim_end_matches('/').to_string())
            .collect()
    };
    let rekeyd = contents(&debs.rekeyd);
    for path in ["usr/bin/rekeyd", UNIT, CONFIG] {
        assert!(
            rekeyd.iter().any(|p| p == path),
            "rekeyd's package has no /{path}: {rekeyd:?}"
        );
    }
    let conffiles = ok(Command::new("dpkg-deb").arg("-I").arg(&debs.rekeyd).arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/rekey/config.toml", "rekeyd's conffiles");
    let app = contents(&debs.app);
    for path in ["usr/bin/rekey", DESKTOP_FILE] {
        assert!(
            app.iter().any(|p| p == path),
            "the app's package has no /{path}: {app:?}"
        );
    }
    let depends = field(&debs.app, "Depends");
    // WebKitGTK, and the CA roots that connected mode checks a server's certificate with.
    for needed in ["libwebkit2gtk-4.1-0", "ca-certificates"] {
        assert!(
            depends.contains(needed),
            "the app's package depends on {depends}, not {needed}"
        );
    }
}

fn is_root() -> bool {
    ok(Command::new("id").arg("-u")).trim() == "0"
}

/// Unpacks both packages into a temporary root and checks them there.
fn unpacked(debs: &Debs) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for deb in [&debs.rekeyd, &debs.app] {
        ok(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root));
    }
    // As the unit's StateDirectory= would make it.
    let state = root.join("var/lib/rekey");
    std::fs::create_dir_all(&state).unwrap();
    let user = ServiceUser::new(&state, &[dir.path(), &root]);
    check_unit(&root);
    check_service_runs(&root, &state, &user);
    // What the desktop-file-utils trigger does after an install.
    ok(Command::new("update-desktop-database").arg(root.join("usr/share/applications")));
    check_desktop_file(&root, &root.join("usr/share"), Some("Rekey.desktop"));
}

/// Installs both packages, checks them, removes and purges them.
fn installed(debs: &Debs) {
    assert!(
        is_root(),
        "REKEY_TEST_INSTALL=1 installs the packages: run the test as root"
    );
    for package in ["rekeyd", "rekey"] {
        assert!(
            !is_installed(package),
            "{package} is already installed on this machine: REKEY_TEST_INSTALL=1 installs and removes the \
             packages, so it runs only where they are not installed (remove it, or leave REKEY_TEST_INSTALL unset)"
        );
    }
    let state = Path::new("/var/lib/rekey");
    assert!(
        !state.exists(),
        "/var/lib/rekey exists already: this test would put its data there; move it away first"
    );
    let guard = Installed;
    let out = run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .arg(&debs.rekeyd)
        .arg(&debs.app)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    assert!(
        out.status.success(),
        "apt-get install of the packages failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = |p: &str| -> Vec<PathBuf> {
        ok(Command::new("dpkg").args(["-L", p]))
            .lines()
            .map(PathBuf::from)
            .collect()
    };
    let files: Vec<PathBuf> = listed("rekeyd")
        .into_iter()
        .chain(listed("rekey"))
        .filter(|p| !p.is_dir())
        .collect();
    assert!(files.contains(&PathBuf::from("/usr/bin/rekeyd")) && files.contains(&PathBuf::from("/usr/bin/rekey")));
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/rekeyd.service").exists(),
        "the package did not enable rekeyd.service (no link in multi-user.target.wants)"
    );
    let out = ok(Command::new("bash").args(["-c", "command -v rekeyd rekey"]));
    assert_eq!(
        out, "/usr/bin/rekeyd\n/usr/bin/rekey\n",
        "the installed programs are not the ones on PATH"
    );

    // As systemd makes it for StateDirectory= (a DynamicUser's is /var/lib/private/rekey).
    std::fs::create_dir_all(state).unwrap();
    let user = ServiceUser::new(state, &[]);
    let root = Path::new("/");
    check_unit(root);
    check_service_runs(root, state, &user);
    check_desktop_file(root, Path::new("/usr/share"), Some("Rekey.desktop"));
    let ldd = ok(Command::new("ldd").arg("/usr/bin/rekey"));
    assert!(
        !ldd.contains("not found"),
        "the app's libraries are not all installed:\n{ldd}"
    );

    // Upgrade: a newer rekeyd over this one keeps the administrator's changed conffile, the
    // unit enabled and the data.
    let newer_dir = tempfile::tempdir().unwrap();
    let newer_version = format!("{}+upgrade1", field(&debs.rekeyd, "Version"));
    let mut newer = Command::new("cargo");
    newer
        .args([
            "deb",
            "-q",
            "-p",
            "rekeyd",
            "--no-build",
            "--fast",
            "--deb-version",
            &newer_version,
            "-o",
        ])
        .arg(newer_dir.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", &debs.target);
    if debs.debug {
        newer.args(["--profile", "dev"]);
    }
    ok(&mut newer);
    let newer_deb = newer_dir.path().join(format!("rekeyd_{newer_version}_amd64.deb"));
    let config = Path::new("/etc/rekey/config.toml");
    let changed = format!(
        "{}\n# changed by the administrator\nlimit_client = \"30/15m\"\n",
        std::fs::read_to_string(config).unwrap()
    );
    std::fs::write(config, &changed).unwrap();
    ok(Command::new("dpkg")
        .arg("-i")
        .arg(&newer_deb)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    assert_eq!(
        ok(Command::new("dpkg-query").args(["-W", "-f", "${Version}", "rekeyd"])),
        newer_version
    );
    assert_eq!(
        std::fs::read_to_string(config).unwrap(),
        changed,
        "the upgrade replaced the administrator's /etc/rekey/config.toml"
    );
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/rekeyd.service").exists(),
        "after the upgrade rekeyd.service is no longer enabled"
    );
    check_service_runs(root, state, &user);

    // dpkg -r: everything goes but the conffile.
    ok(Command::new("dpkg").args(["-r", "rekey", "rekeyd"]));
    let conffile = PathBuf::from("/etc/rekey/config.toml");
    let left: Vec<&PathBuf> = files.iter().filter(|p| p.exists() && **p != conffile).collect();
    assert!(left.is_empty(), "dpkg -r left these behind: {left:?}");
    assert!(
        conffile.exists(),
        "dpkg -r removed the conffile /etc/rekey/config.toml (only a purge should)"
    );
    check_desktop_file_gone();

    // dpkg --purge: the conffile and the unit's enablement go; the service's data stays.
    ok(Command::new("dpkg").args(["--purge", "rekey", "rekeyd"]));
    assert!(!Path::new("/etc/rekey").exists(), "dpkg --purge left /etc/rekey behind");
    let places = [
        "/etc/systemd",
        "/var/lib/systemd/deb-systemd-helper-enabled",
        "/var/lib/systemd/deb-systemd-helper-masked",
    ];
    let traces = ok(Command::new("find")
        .args(places.iter().filter(|p| Path::new(p).exists()))
        .args(["-name", "rekeyd*"]));
    assert!(
        traces.trim().is_empty(),
        "dpkg --purge left systemd links behind:\n{traces}"
    );
    assert!(
        state.join("keys.json").exists(),
        "dpkg --purge deleted the service's data in /var/lib/rekey: it must keep the accounts"
    );
    drop(guard);
    std::fs::remove_dir_all(state).unwrap();
}

fn is_installed(package: &str) -> bool {
    run(Command::new("dpkg-query").args(["-W", "-f", "${Status}", package]))
        .stdout
        .starts_with(b"install ok installed")
}

/// Purges the packages if a check failed while they were installed.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new("dpkg").args(["--purge", "rekey", "rekeyd"]).status();
            let _ = std::fs::remove_dir_all("/var/lib/rekey");
        }
    }
}

/// The unprivileged user the unit's programs run as (`nobody`, standing in for the unit's
/// DynamicUser), or this user when the test is not root.
struct ServiceUser {
    switch: bool,
}

impl ServiceUser {
    /// Gives `state` to the user, as systemd does, and lets it through `dirs`.
    fn new(state: &Path, dirs: &[&Path]) -> ServiceUser {
        use std::os::unix::fs::PermissionsExt;
        let switch = is_root();
        if switch {
            ok(Command::new("chown").arg("nobody:nogroup").arg(state));
            for dir in dirs {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        } else {
            println!("Not root: running rekeyd as this user, not as an unprivileged one of its own.");
        }
        std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700)).unwrap();
        ServiceUser { switch }
    }

    /// `program args…` as the service runs it: its user, a cleared environment with the
    /// unit's Environment=, umask 0077.
    fn command(&self, unit: &Unit, program: &Path, args: &[String]) -> Command {
        let mut c = Command::new("setpriv");
        if self.switch {
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
        }
        c.args(["--no-new-privs", "--", "sh", "-c", "umask 0077 && exec \"$0\" \"$@\""])
            .arg(program)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", "/")
            .env("LANG", "C.UTF-8");
        for assignment in unit.all("Environment") {
            let (k, v) = assignment.split_once('=').expect("Environment= holds KEY=value");
            c.env(k, v);
        }
        c
    }
}

/// The `[Service]` section of a unit file, key by key.
struct Unit {
    path: PathBuf,
    service: BTreeMap<String, Vec<String>>,
}

impl Unit {
    fn read(path: &Path) -> Unit {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut service: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if line.starts_with('[') {
                section = line.to_string();
            } else if section == "[Service]" {
                let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("not a setting: {line}"));
                service.entry(k.to_string()).or_default().push(v.to_string());
            }
        }
        Unit {
            path: path.to_path_buf(),
            service,
        }
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.service.get(key).cloned().unwrap_or_default()
    }

    /// The value in force (the last assignment).
    fn get(&self, key: &str) -> Option<&str> {
        self.service.get(key).and_then(|v| v.last()).map(String::as_str)
    }
}

/// The unit: systemd's own checks, then each setting that matters.
fn check_unit(root: &Path) {
    let unit = Unit::read(&root.join(UNIT));
    assert_eq!(unit.get("ExecStart"), Some(EXEC_START), "{}", unit.path.display());
    for (key, want) in HARDENING {
        assert_eq!(
            unit.get(key),
            Some(*want),
            "{} must say {key}={want}",
            unit.path.display()
        );
    }
    let filters = unit.all("SystemCallFilter");
    assert!(
        filters.iter().any(|f| f == "@system-service"),
        "rekeyd.service must allow only @system-service system calls (SystemCallFilter=@system-service), has {filters:?}"
    );
    assert!(
        unit.all("ExecStartPre").is_empty() && unit.all("PermissionsStartOnly").is_empty(),
        "nothing in rekeyd.service may run with more privileges than rekeyd serve"
    );

    // systemd-analyze checks that ExecStart's program exists: point it at the unpacked one.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("rekeyd.service");
    let text = std::fs::read_to_string(&unit.path).unwrap();
    let binary = root.join("usr/bin/rekeyd");
    std::fs::write(
        &copy,
        text.replace(
            "ExecStart=/usr/bin/rekeyd ",
            &format!("ExecStart={} ", binary.display()),
        ),
    )
    .unwrap();
    let out = run(Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&copy));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify finds fault with rekeyd.service ({}):\n{said}",
        out.status
    );
    let out = ok(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&copy));
    let score: f64 = out
        .lines()
        .find_map(|l| l.split("Overall exposure level for rekeyd.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in systemd-analyze security's output:\n{out}"));
    println!("systemd-analyze security: rekeyd.service's exposure is {score} (0 = locked down, 10 = none)");
    assert!(
        score <= MAX_EXPOSURE,
        "rekeyd.service's exposure is {score}, above {MAX_EXPOSURE}:\n{out}"
    );
}

/// `rekeyd --version`, `config check` and `serve`, each run as the unit runs `serve`.
fn check_service_runs(root: &Path, state: &Path, user: &ServiceUser) {
    let unit = Unit::read(&root.join(UNIT));
    let mut words = unit.get("ExecStart").unwrap().split_whitespace().map(|w| {
        // The unit's paths, inside the unpacked tree.
        let mapped = match w {
            "/var/lib/rekey" => state.to_path_buf(),
            w if w.starts_with('/') => root.join(&w[1..]),
            w => PathBuf::from(w),
        };
        mapped.display().to_string()
    });
    let program = PathBuf::from(words.next().unwrap());
    let mut args: Vec<String> = words.collect();
    assert_eq!(args.pop().as_deref(), Some("serve"));
    let with =
        |more: &[&str]| -> Vec<String> { args.iter().cloned().chain(more.iter().map(|s| s.to_string())).collect() };

    let version = ok(&mut user.command(&unit, &program, &with(&["--version"])));
    assert_eq!(version.trim(), format!("rekeyd {}", env!("CARGO_PKG_VERSION")));

    let check = ok(&mut user.command(&unit, &program, &with(&["config", "check"])));
    assert!(check.contains("The configuration is valid."), "{check}");
    let line = |key: &str| {
        check
            .lines()
            .find_map(|l| l.strip_prefix(key).map(str::trim))
            .unwrap_or_else(|| panic!("config check shows no {key}:\n{check}"))
            .to_string()
    };
    assert_eq!(
        line("data_dir"),
        state.display().to_string(),
        "the service's data directory"
    );
    assert_eq!(
        line("listen"),
        "127.0.0.1:8080",
        "the packaged config listens on loopback"
    );
    assert!(
        line("mail").contains("mailbox"),
        "no smtp_url: mail goes to the local mailbox"
    );

    // The service itself, on a free port (the environment overrides the file's listen).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut serve = user.command(&unit, &program, &with(&["serve"]));
    serve
        .env("REKEY_LISTEN", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap());
    let mut child = serve.spawn().expect("rekeyd serve starts");
    let log_text = || std::fs::read_to_string(log.path()).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            break text;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the packaged rekeyd serve exited ({status}) as the service's user:\n{}",
                log_text()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the packaged rekeyd serve did not listen within 30 s:\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "GET /healthz of the packaged rekeyd serve: {answer}\n{}",
        log_text()
    );
    assert!(
        status.success(),
        "rekeyd serve did not stop cleanly on SIGTERM ({status}):\n{}",
        log_text()
    );

    // What it wrote: the service's user's alone.
    use std::os::unix::fs::PermissionsExt;
    let keys = state.join("keys.json");
    let meta = std::fs::metadata(&keys).unwrap_or_else(|e| panic!("rekeyd serve made no {}: {e}", keys.display()));
    assert_eq!(
        meta.permissions().mode() & 0o077,
        0,
        "{} is readable by others",
        keys.display()
    );
    if user.switch {
        let nobody = ok(Command::new("id").args(["-u", "nobody"]))
            .trim()
            .parse::<u32>()
            .unwrap();
        let others = ok(Command::new("find").arg(state).args([
            "(",
            "!",
            "-uid",
            &nobody.to_string(),
            "-o",
            "-perm",
            "/077",
            ")",
            "-print",
        ]));
        let others: Vec<&str> = others.lines().filter(|l| Path::new(l) != state).collect();
        assert!(
            others.is_empty(),
            "files of the service not owned by it alone: {others:?}"
        );
    }
}

/// The desktop file: valid, the app's, the handler of rekey:// links for a fresh user.
fn check_desktop_file(root: &Path, data_dir: &Path, want_handler: Option<&str>) {
    let file = root.join(DESKTOP_FILE);
    let out = run(Command::new("desktop-file-validate").arg(&file));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "desktop-file-validate {}:\n{said}",
        file.display()
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{} has no {key}=:\n{text}", file.display()))
            .to_string()
    };
    let mime = value("MimeType");
    assert!(
        mime.split(';').any(|m| m == "x-scheme-handler/rekey"),
        "{} does not declare x-scheme-handler/rekey: MimeType={mime}",
        file.display()
    );
    let exec = value("Exec");
    let mut words = exec.split_whitespace();
    let program = words.next().unwrap();
    assert!(
        program == "rekey" || program == "/usr/bin/rekey",
        "Exec={exec} does not start the packaged app"
    );
    assert!(words.any(|w| w == "%u"), "Exec={exec} does not pass the link (%u)");
    assert_eq!(
        xdg_default(data_dir).as_deref(),
        want_handler,
        "the rekey:// handler for a fresh user"
    );
}

/// `xdg-mime query default x-scheme-handler/rekey` for a user with nothing of his own.
fn xdg_default(data_dir: &Path) -> Option<String> {
    let home = tempfile::tempdir().unwrap();
    let out = ok(Command::new("xdg-mime")
        .args(["query", "default", "x-scheme-handler/rekey"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("XDG_DATA_HOME", home.path().join(".local/share"))
        .env("XDG_DATA_DIRS", data_dir));
    Some(out.trim().to_string()).filter(|s| !s.is_empty())
}

fn check_desktop_file_gone() {
    assert!(!Path::new("/").join(DESKTOP_FILE).exists());
    assert_eq!(
        xdg_default(Path::new("/usr/share")),
        None,
        "after dpkg -r, rekey:// still has a handler"
    );
}
