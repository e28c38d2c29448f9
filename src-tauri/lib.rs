//! Rekey's desktop shell: Tauri 2 around `rekey-core`. Thin by design: commands parse and
//! call the core; deep links are parsed here and handed to the page; the workers that
//! mint resets and deliver mail run while the app is open.

mod backend;
mod commands;
mod language;
mod link;
mod mailbox;
mod settings;
mod shell;
mod ui_error;

pub use link::{is_rekey_url, parse as parse_link, reset_token, Action as LinkAction, LinkError};
pub use shell::Shell;
pub use ui_error::UiError;

use tauri::{Manager, RunEvent, Runtime};

/// Registers the commands on a builder (the app's own, or a test's mock builder).
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        commands::app_info,
        commands::register,
        commands::inspect_verify_link,
        commands::verify_account,
        commands::sign_in,
        commands::sign_out,
        commands::change_password,
        commands::request_reset,
        commands::take_pending_link,
        commands::inspect_link,
        commands::confirm_reset,
        commands::password_strength,
        commands::mail_status,
        commands::mailbox_list,
        commands::mailbox_open,
        commands::open_link,
        settings::settings,
        settings::server_test,
        settings::server_connect,
        settings::server_disconnect,
        settings::window_words,
        settings::set_app_language,
        commands::mail_language,
        commands::set_mail_language,
    ])
}

/// Starts the app: one instance per user (a second launch hands its link over and exits),
/// the `rekey://` scheme registered, the core opened from the usual config layers.
pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("REKEY_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = settings::load();
    let app = with_commands(
        tauri::Builder::default()
            // First, so a second launch is caught before anything else starts.
            .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
                match argv.iter().find(|a| is_rekey_url(a)) {
                    Some(url) => shell::deliver_link(app, url, false),
                    None => shell::focus(app),
                }
            }))
            .plugin(tauri_plugin_deep_link::init())
            .plugin(stay_home()),
    )
    .setup(move |app| {
        // The operator's name on the window (tauri.conf.json says "Rekey").
        if let (Ok(config), Some(window)) = (&config, app.get_webview_window("main")) {
            let _ = window.set_title(&config.product_name);
        }
        let shell = Shell::open(config);
        shell.start_workers();
        app.manage(shell);
        setup_links(app.handle());
        Ok(())
    })
    .build(tauri::generate_context!())
    .expect("the Rekey window could not be created");
    app.run(|app, event| {
        if let RunEvent::Exit = event {
            app.state::<Shell>().stop();
        }
    });
}

/// Keeps the window on the app's own pages: a link in a mail or a script can never take it
/// to a web page, where a look-alike form could ask for a password.
fn stay_home<R: Runtime>() -> tauri::plugin::TauriPlugin<R> {
    tauri::plugin::Builder::new("stay-home")
        .on_navigation(|_, url| {
            let own = matches!(
                (url.scheme(), url.host_str()),
                ("tauri", Some("localhost")) | ("http" | "https", Some("tauri.localhost"))
            );
            if !own {
                tracing::warn!(scheme = url.scheme(), "the window was kept from leaving the app");
            }
            own
        })
        .build()
}

/// Registers the scheme (Linux: a desktop file in the user's data dir, at every start so it
/// follows the binary) and takes the link this launch carries, if any.
fn setup_links(app: &tauri::AppHandle) {
    use tauri_plugin_deep_link::DeepLinkExt;
    #[cfg(any(target_os = "linux", windows))]
    if let Err(e) = app.deep_link().register_all() {
        tracing::warn!(error = %e, "could not register the rekey:// scheme");
    }
    if let Some(url) = std::env::args().skip(1).find(|a| is_rekey_url(a)) {
        shell::deliver_link(app, &url, true);
    }
    // On Linux and Windows a link arrives as a launch argument, which the single-instance
    // callback reads (it sees malformed links too, so they get an answer). macOS delivers
    // links as events instead.
    #[cfg(target_os = "macos")]
    {
        let handle = app.clone();
        app.deep_link().on_open_url(move |event| {
            for url in event.urls() {
                shell::deliver_link(&handle, url.as_str(), false);
            }
        });
    }
}
