//! A throwaway, real PostgreSQL cluster for one test.
//!
//! [`PgCluster::start`] runs `initdb` into a fresh temporary directory and
//! starts the server on a free 127.0.0.1 port, with its unix socket in that
//! same directory, so tests never touch (or depend on) a system cluster.
//! Dropping the value stops the server and deletes everything.
//!
//! ```no_run
//! use rekey_testkit::postgres::PgCluster;
//!
//! let pg = PgCluster::start();
//! let url = pg.database("rekey_test"); // postgres://rekey:…@127.0.0.1:PORT/rekey_test
//! // ... point the code under test at `url` ...
//! assert_eq!(pg.psql("rekey_test", "SELECT 1"), "1\n");
//! ```
//!
//! Layout of the temporary directory: `data/` (the cluster), `server.log`,
//! the socket `.s.PGSQL.PORT`, and `pwfile` (the superuser's password).
//!
//! The server binaries come from Debian's `postgresql` package
//! (`/usr/lib/postgresql/<highest version>/bin`); `scripts/setup-debian`
//! installs it.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{free_port, write_file, TestCa};

/// The superuser every cluster is made with; it is also the user in the URLs.
const USER: &str = "rekey";
/// Where Debian's `postgresql-NN` packages put their server binaries.
const PG_ROOT: &str = "/usr/lib/postgresql";
/// How long `pg_ctl start -w` may wait for the server to accept connections
/// (crash recovery after [`PgCluster::stop_immediate`] included).
const START_TIMEOUT_SECS: u32 = 30;
/// How many free ports to try: another process may grab the port between
/// [`free_port`] releasing it and the server binding it.
const PORT_ATTEMPTS: usize = 3;

/// A running PostgreSQL cluster owned by one test; stopped and deleted on drop.
#[derive(Debug)]
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// initdb and pg_ctl refuse to run as root, so as root they run as `postgres`.
    as_postgres: bool,
    port: u16,
    password: String,
}

impl PgCluster {
    /// initdb into a fresh temporary directory, start on a free loopback TCP
    /// port with the unix socket in that directory.  Panics (with the server
    /// log) if the server does not come up.
    pub fn start() -> PgCluster {
        PgCluster::create(None)
    }

    /// Same as [`start`](Self::start), but the server also speaks TLS
    /// (`ssl=on`) with `ca`'s server certificate (for `127.0.0.1` and
    /// `localhost`), so clients can use `sslmode=verify-full` with
    /// [`TestCa::ca_pem`].  Connections without TLS are still allowed.
    pub fn start_with_tls(ca: &TestCa) -> PgCluster {
        PgCluster::create(Some(ca))
    }

    /// Create a fresh, empty database `name` (letters, digits, `_`) on this
    /// cluster and return its URL: `postgres://rekey:PASSWORD@127.0.0.1:PORT/NAME`.
    pub fn database(&self, name: &str) -> String {
        // Restricting the name keeps both the SQL and the URL free of quoting.
        assert!(
            !name.is_empty() && name.len() < 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "database name {name:?}: use 1-63 letters, digits or _"
        );
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        format!("postgres://{USER}:{}@127.0.0.1:{}/{name}", self.password, self.port)
    }

    /// The TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's name (`rekey`), as in the URLs.
    pub fn user(&self) -> &str {
        USER
    }

    /// The superuser's password (random per cluster), as in the URLs; handy
    /// for `PGPASSWORD` when running client tools over TCP.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Run `sql` through `psql -X -A -t -q -v ON_ERROR_STOP=1` as the
    /// superuser against database `db` over the unix socket (trust auth) and
    /// return its stdout: one line per row, columns joined by `|`.  Panics
    /// with psql's stderr if any statement fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        // The SQL goes in on stdin rather than -c so that several statements run
        // one by one (as a script would), not as one implicit transaction.
        let mut child = self
            .command(&self.bin.join("psql"), false)
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-U", USER, "-p"])
            .arg(self.port.to_string())
            .arg("-h")
            .arg(self.dir.path())
            .arg("-d")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run psql: {e}"));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .expect("write SQL to psql");
        let out = child.wait_with_output().expect("wait for psql");
        if !out.status.success() {
            panic!(
                "psql on {db} failed ({}):\n{sql}\n--- stderr ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `pg_ctl stop -m immediate`: the server dies without a checkpoint, as in
    /// a crash.  Returns once the port refuses connections.
    pub fn stop_immediate(&self) {
        let out = self.pg_ctl(&["stop", "-m", "immediate"]);
        if !out.status.success() {
            panic!(
                "pg_ctl stop failed: {}\n--- server log ---\n{}",
                describe(&out),
                self.log()
            );
        }
        wait_until_closed(self.port);
    }

    /// Start the server again on the same port and data (running crash
    /// recovery if it was stopped with [`stop_immediate`](Self::stop_immediate)).
    /// Panics with the log if it fails, e.g. because the port was taken meanwhile.
    pub fn start_again(&self) {
        if let Err(why) = self.try_start() {
            panic!(
                "PostgreSQL did not start again on port {}: {why}\n--- server log ---\n{}",
                self.port,
                self.log()
            );
        }
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn create(tls: Option<&TestCa>) -> PgCluster {
        let bin = find_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("rekey-pg-")
            .tempdir()
            .expect("create temp dir");
        let as_postgres = running_as_root();
        let mut pg = PgCluster {
            dir,
            bin,
            as_postgres,
            port: 0,
            password: random_hex(16),
        };
        let root = pg.dir.path().to_path_buf();

        // initdb reads the password from a file so that it never shows in `ps`.
        let pwfile = root.join("pwfile");
        write_file(&pwfile, pg.password.as_bytes());
        pg.give_to_postgres();
        let out = pg
            .command(&pg.bin.join("initdb"), true)
            .arg("-D")
            .arg(root.join("data"))
            .arg(format!("--username={USER}"))
            .arg(format!("--pwfile={}", pwfile.display()))
            // Trust over the socket lets psql() work without the password; TCP needs it.
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            // Fixed locale: the result must not depend on the caller's LANG.
            .args(["--encoding=UTF8", "--locale=C.UTF-8"])
            // Skips only initdb's final flush of the new files (a throwaway cluster);
            // the server itself keeps fsync on.
            .arg("--no-sync")
            .output()
            .unwrap_or_else(|e| panic!("run initdb: {e}"));
        if !out.status.success() {
            panic!("initdb failed: {}", describe(&out));
        }

        let data = root.join("data");
        let mut hba = String::from("local all all trust\n");
        if let Some(ca) = tls {
            copy(ca.server_cert(), &data.join("server.crt"));
            copy(ca.server_key(), &data.join("server.key"));
            hba.push_str("hostssl all all 127.0.0.1/32 scram-sha-256\n");
        }
        // A plain `host` line matches TLS and non-TLS connections alike.
        hba.push_str("host all all 127.0.0.1/32 scram-sha-256\n");
        write_file(&data.join("pg_hba.conf"), hba.as_bytes());
        // Our settings live in their own file so each port attempt can rewrite it.
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        writeln!(conf, "include 'rekey.conf'").expect("append to postgresql.conf");
        pg.give_to_postgres();

        let ssl = if tls.is_some() {
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
        } else {
            ""
        };
        for attempt in 1..=PORT_ATTEMPTS {
            pg.port = free_port();
            let settings = format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
                 max_connections = 100\nshared_buffers = 32MB\n{ssl}",
                pg.port,
                root.display().to_string().replace('\'', "''"),
            );
            write_file(&data.join("rekey.conf"), settings.as_bytes());
            pg.give_to_postgres();
            let log_before = pg.log().len();
            match pg.try_start() {
                Ok(()) => return pg,
                Err(_) if attempt < PORT_ATTEMPTS && pg.log()[log_before..].contains("Address already in use") => {
                    continue
                }
                // `pg` drops while unwinding, which stops a half-started server.
                Err(why) => panic!(
                    "PostgreSQL did not start on port {}: {why}\n--- server log ---\n{}",
                    pg.port,
                    pg.log()
                ),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `pg_ctl start -w`: returns once the server accepts connections.
    fn try_start(&self) -> Result<(), String> {
        let timeout = START_TIMEOUT_SECS.to_string();
        let log = self.log_path();
        let out = self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            &timeout,
            "-l",
            log.to_str().expect("UTF-8 temp path"),
        ]);
        if out.status.success() {
            Ok(())
        } else {
            // A timed-out start may leave a server behind; never leave it running.
            let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
            Err(describe(&out))
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        self.command(&self.bin.join("pg_ctl"), true)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run pg_ctl: {e}"))
    }

    /// A command for a PostgreSQL tool; `server_side` tools (initdb, pg_ctl)
    /// run as `postgres` when we are root, because they refuse to run as root.
    fn command(&self, program: &Path, server_side: bool) -> Command {
        let mut cmd = if server_side && self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        // The `postgres` user may not be able to enter the caller's directory.
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        // PGHOST, PGSSLMODE, PGOPTIONS… from the caller's environment must not
        // redirect or reconfigure the harness's own commands.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// As root, hand the whole temp dir to `postgres` (the server must own its
    /// data directory and key file, and be able to enter the top directory).
    fn give_to_postgres(&self) {
        let key = self.dir.path().join("data/server.key");
        if key.exists() {
            // The server refuses a private key that others can read.
            run(Command::new("chmod").arg("0600").arg(&key));
        }
        if self.as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(self.dir.path()));
            run(Command::new("chmod").arg("0700").arg(self.dir.path()));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Nothing to keep, so no clean shutdown; the temp dir goes after this.
        let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
        wait_until_closed(self.port);
    }
}

/// The bin directory of the highest PostgreSQL version installed.
fn find_bin_dir() -> PathBuf {
    let highest = fs::read_dir(PG_ROOT)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|v| Path::new(PG_ROOT).join(v.to_string()).join("bin/initdb").exists())
        .max();
    match highest {
        Some(v) => Path::new(PG_ROOT).join(v.to_string()).join("bin"),
        None => panic!("PostgreSQL is not installed (no {PG_ROOT}/<version>/bin/initdb); run scripts/setup-debian"),
    }
}

/// Whether this process's effective user is root (read from /proc, no libc).
fn running_as_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid_line = status.lines().find_map(|l| l.strip_prefix("Uid:"));
    match uid_line.and_then(|l| l.split_whitespace().nth(1)) {
        Some(euid) => euid == "0",
        None => panic!("cannot read the effective uid from /proc/self/status"),
    }
}

/// Wait (up to 5 s) until nothing accepts connections on 127.0.0.1:`port`:
/// pg_ctl returns when the pid file is gone, a moment before the process is.
fn wait_until_closed(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() && Instant::now() < deadline {
        sleep(Duration::from_millis(10));
    }
}

/// `n` random bytes from the kernel, hex-encoded (URL-safe, no quoting needed).
fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    let mut urandom = fs::File::open("/dev/urandom").expect("open /dev/urandom");
    std::io::Read::read_exact(&mut urandom, &mut bytes).expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn copy(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!("{cmd:?} failed: {}", describe(&out));
    }
}

fn describe(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
