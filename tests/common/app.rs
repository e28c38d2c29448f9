//! The desktop shell's commands through Tauri's mock runtime (no display needed): an app
//! over a real data directory, its commands called as the page calls them.
#![allow(dead_code)]

use std::time::Duration;

use rekey_desktop::Shell;
use rekey_testkit::SmtpCapture;
use serde_json::{json, Value};
use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindow;

pub const PASSWORD: &str = "quiet river under the old mill";
pub const NEW_PASSWORD: &str = "lanterns drift past the harbour wall";

pub struct App {
    pub dir: tempfile::TempDir,
    pub app: tauri::App<MockRuntime>,
    pub window: WebviewWindow<MockRuntime>,
}

pub fn config(data: &std::path::Path, smtp: Option<&SmtpCapture>) -> rekey_core::Config {
    let mut flags = vec![
        ("data_dir", data.display().to_string()),
        ("argon2_memory_kib", "8192".to_string()),
        ("argon2_iterations", "1".to_string()),
        ("mail_from", "Rekey <no-reply@rekey.test>".to_string()),
    ];
    if let Some(smtp) = smtp {
        flags.push(("smtp_url", smtp.implicit_url()));
        flags.push(("smtp_ca_file", smtp.ca_pem().display().to_string()));
    }
    rekey_core::Config::from_layers(None, None, &[], &flags).unwrap()
}

impl App {
    pub fn start(smtp: Option<&SmtpCapture>) -> App {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&dir.path().join("data"), smtp);
        Self::with_shell(dir, |_| Ok(config))
    }

    pub fn with_shell(
        dir: tempfile::TempDir,
        config: impl FnOnce(&std::path::Path) -> Result<rekey_core::Config, String>,
    ) -> App {
        let shell = Shell::open(config(dir.path()));
        shell.start_workers();
        let app = rekey_desktop::with_commands(mock_builder())
            .manage(shell)
            .build(mock_context(noop_assets()))
            .unwrap();
        let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .unwrap();
        App { dir, app, window }
    }

    pub fn call(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        get_ipc_response(&self.window, request).map(|b| b.deserialize::<Value>().unwrap())
    }

    pub fn ok(&self, cmd: &str, args: Value) -> Value {
        self.call(cmd, args).unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }

    /// The refusal's code, after checking it has plain words with it.
    pub fn refused(&self, cmd: &str, args: Value) -> String {
        let e = self.call(cmd, args).expect_err(cmd);
        let message = e["message"].as_str().unwrap_or_default();
        assert!(message.len() > 15 && !message.contains("Error"), "{e}");
        e["code"].as_str().unwrap().to_string()
    }

    pub fn wait_for_mailbox(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let list = self.ok("mailbox_list", json!({}));
            if list.as_array().unwrap().len() >= n {
                return list.as_array().unwrap().clone();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the local mailbox did not get {n} messages");
    }
}
