//! Proves the throwaway PostgreSQL harness: a real server that takes SQL,
//! listens on its TCP port, survives a crash with its committed data, speaks
//! verified TLS when asked, and is gone after drop.

use std::net::TcpStream;
use std::process::Command;
use std::time::Instant;

use rekey_testkit::{PgCluster, TestCa};

fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// psql over TCP with the cluster's password and the given extra conninfo;
/// returns stdout, or stderr as the error.
fn psql_tcp(pg: &PgCluster, db: &str, extra: &str, sql: &str) -> Result<String, String> {
    let conninfo = format!(
        "host=127.0.0.1 port={} user={} dbname={db} {extra}",
        pg.port(),
        pg.user()
    );
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, &conninfo])
        .env("PGPASSWORD", pg.password())
        .output()
        .expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn sql_tcp_crash_and_restart() {
    let started = Instant::now();
    let pg = PgCluster::start();
    eprintln!("PgCluster::start took {:?}", started.elapsed());

    let url = pg.database("app");
    assert_eq!(
        url,
        format!("postgres://rekey:{}@127.0.0.1:{}/app", pg.password(), pg.port())
    );
    pg.psql(
        "app",
        "CREATE TABLE t (id int PRIMARY KEY, v text);\n\
         INSERT INTO t VALUES (1, 'one'), (2, 'two');",
    );
    assert_eq!(pg.psql("app", "SELECT id, v FROM t ORDER BY id"), "1|one\n2|two\n");
    assert!(accepts(pg.port()), "no TCP listener on {}\n{}", pg.port(), pg.log());
    // The password in the URL is real: scram over TCP works with it...
    assert_eq!(
        psql_tcp(&pg, "app", "sslmode=disable", "SELECT count(*) FROM t").unwrap(),
        "2\n"
    );
    // ...and nothing else gets in.
    let wrong = Command::new("psql")
        .args(["-X", "-c", "SELECT 1"])
        .arg(format!(
            "host=127.0.0.1 port={} user=rekey dbname=app sslmode=disable",
            pg.port()
        ))
        .env("PGPASSWORD", "wrong")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"));

    pg.psql("app", "INSERT INTO t VALUES (3, 'committed before the crash')");
    pg.stop_immediate();
    assert!(
        !accepts(pg.port()),
        "port {} still accepts after stop_immediate",
        pg.port()
    );

    let restarted = Instant::now();
    pg.start_again();
    eprintln!("start_again (with crash recovery) took {:?}", restarted.elapsed());
    assert!(accepts(pg.port()));
    assert_eq!(
        pg.psql("app", "SELECT v FROM t WHERE id = 3"),
        "committed before the crash\n"
    );
    assert!(
        pg.log().contains("database system was interrupted"),
        "no crash recovery in the log:\n{}",
        pg.log()
    );
}

#[test]
fn psql_failure_panics_with_the_error() {
    let pg = PgCluster::start();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pg.psql("postgres", "SELECT nope")))
        .expect_err("bad SQL must panic");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("column \"nope\" does not exist"), "{msg}");
}

#[test]
fn tls_verify_full_and_plain() {
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::new(&certs.path().join("ca"));
    let other_ca = TestCa::new(&certs.path().join("other"));
    let pg = PgCluster::start_with_tls(&ca);
    pg.database("secure");

    let root = |ca: &TestCa| format!("sslmode=verify-full sslrootcert={}", ca.ca_pem().display());
    let sql = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    assert_eq!(psql_tcp(&pg, "secure", &root(&ca), sql).unwrap(), "t\n");
    assert_eq!(psql_tcp(&pg, "secure", "sslmode=require", sql).unwrap(), "t\n");
    // Non-TLS connections are still allowed.
    assert_eq!(psql_tcp(&pg, "secure", "sslmode=disable", sql).unwrap(), "f\n");
    // A client that trusts another CA refuses the server's certificate.
    let err = psql_tcp(&pg, "secure", &root(&other_ca), sql).unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");
}

#[test]
fn drop_stops_the_server() {
    let pg = PgCluster::start();
    let port = pg.port();
    let dir_listing = pg.psql("postgres", "SHOW data_directory");
    let data_dir = std::path::PathBuf::from(dir_listing.trim());
    assert!(accepts(port));
    drop(pg);
    assert!(!accepts(port), "port {port} still accepts after drop");
    assert!(!data_dir.exists(), "{} survived drop", data_dir.display());
}
