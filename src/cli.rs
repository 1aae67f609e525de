//! The command line (README, "Command line"). Each command is a few lines
//! that call into the library.

use crate::app::{App, Role, shutdown_on_signals};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::Actor;
use crate::services::{ServiceError, accounts, audit, privacy_ops};
use crate::store::Store;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::BufRead;
use std::path::PathBuf;

mod transfer;

#[derive(Debug, Parser)]
#[command(name = "tidings", version, about = "Mailing lists and supporter updates for campaign groups")]
pub struct Cli {
    /// Configuration file (environment variables override it).
    #[arg(long, global = true, default_value = "tidings.toml")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server (and, unless --no-workers, the workers).
    Serve {
        /// Serve HTTP only; run `tidings worker` elsewhere.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run the workers only.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Organiser accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Check the configuration, the database and the mail relay.
    Check,
    /// Erase a subscriber (right to erasure): delete everything held about
    /// them and keep only a suppression entry so they are never mailed again.
    Erase {
        #[arg(long)]
        email: String,
    },
    /// Import subscribers from a CSV file (header row required), with a
    /// recorded basis (confirmed) or a confirmation mail each (pending).
    Import(transfer::ImportArgs),
    /// Write subscribers as CSV to standard output (one line per subscription).
    Export {
        /// Only this list's subscribers.
        #[arg(long)]
        list: Option<String>,
    },
    /// Bounces and complaints.
    Bounces {
        #[command(subcommand)]
        command: BouncesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BouncesCommand {
    /// Apply one RFC 3464 DSN or RFC 5965 ARF message read from standard
    /// input (for an MTA's pipe transport). Exits 0 when it was applied or
    /// ignored (with the reason printed), 1 when it cannot be read.
    Ingest,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an organiser. Prints a generated password unless one is piped
    /// in with --password-stdin.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Admin)]
        role: RoleArg,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget every failed login recorded against an organiser's account,
    /// from any address, so they can log in again at once.
    Unlock {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Editor,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token; prints it alone on the last line of stdout.
    Create {
        #[arg(long)]
        name: String,
    },
}

/// Runs one command; the error is what `main` prints before exiting 1.
pub async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(&cli.config)?;
    let clock = Clock::system();
    match cli.command {
        Command::Serve { no_workers } => {
            let app = App::build(config, clock).await?;
            let listener = app.bind().await?;
            let role = if no_workers { Role::Web } else { Role::All };
            tracing::info!(address = %app.ctx.config.bind, base_url = %app.ctx.config.base_url, workers = !no_workers, "Tidings is listening");
            print_first_run_hints(&app).await;
            app.run(Some(listener), role, shutdown_on_signals()).await?;
        }
        Command::Worker => {
            let app = App::build(config, clock).await?;
            tracing::info!("Tidings workers running");
            app.run(None, Role::Workers, shutdown_on_signals()).await?;
        }
        Command::Migrate => {
            let store = Store::connect(&config.database_url).await?;
            store.migrate().await?;
            println!("database is up to date");
        }
        Command::User { command: UserCommand::Add { email, role, password_stdin } } => {
            let store = migrated(&config).await?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                accounts::generate_password()?
            };
            let role = match role {
                RoleArg::Admin => accounts::Role::Admin,
                RoleArg::Editor => accounts::Role::Editor,
            };
            let id = accounts::add_user(&store, &clock, &email, &password, role).await?;
            let detail = format!("{} ({})", email.trim(), role.as_str());
            cli_audit(&store, &clock, "cli.user.add", &format!("organiser:{id}"), detail).await;
            println!("added {} ({})", email.trim(), role.as_str());
            if !password_stdin {
                println!("password: {password}");
            }
        }
        Command::User { command: UserCommand::Unlock { email } } => {
            let store = migrated(&config).await?;
            let key = address_key(&store, &clock, &config).await?;
            let forgotten = crate::services::sessions::unlock(&store, &key, &email).await?;
            let detail = format!("{forgotten} failed logins forgotten");
            cli_audit(&store, &clock, "cli.user.unlock", email.trim(), detail).await;
            println!("unlocked {}: {forgotten} recorded failed logins forgotten", email.trim());
        }
        Command::Token { command: TokenCommand::Create { name } } => {
            let store = migrated(&config).await?;
            let token = accounts::create_token(&store, &clock, &name).await?;
            cli_audit(&store, &clock, "cli.token.create", name.trim(), String::new()).await;
            println!("API token \"{}\" created. It is shown once; store it safely.", name.trim());
            println!("{token}");
        }
        Command::Check => check(config).await?,
        Command::Erase { email } => erase(&config, &clock, &email).await?,
        Command::Bounces { command: BouncesCommand::Ingest } => ingest_bounce(config, clock).await?,
        Command::Import(args) => transfer::import(config, clock, args).await?,
        Command::Export { list } => transfer::export(config, list).await?,
    }
    Ok(())
}

async fn migrated(config: &Config) -> Result<Store, Box<dyn std::error::Error>> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    Ok(store)
}

async fn print_first_run_hints(app: &App) {
    if let Ok(true) = crate::services::setup::notice_is_default(&app.ctx.store, &app.ctx.clock).await {
        tracing::warn!(
            "the privacy notice is still the shipped default: publish your own with POST /api/v1/privacy-notices \
             (see README, \"Consent wording\")"
        );
    }
    println!("Tidings is running: open {} to subscribe.", app.ctx.config.link("/"));
    // With no organiser yet, the person who just started Tidings is the one
    // to set it up: hand them a one-time link rather than a default password.
    match accounts::issue_setup_token(&app.ctx.store, &app.ctx.clock).await {
        Ok(Some(token)) => println!(
            "No organiser account exists yet. Create the first admin at {} (works once, for 24 hours).",
            app.ctx.config.link(&format!("/admin/setup/{token}"))
        ),
        Ok(None) => println!("Organisers log in at {}.", app.ctx.config.link("/admin")),
        Err(e) => tracing::error!(error = %e, "could not issue a first-run setup link"),
    }
}

/// Records a command-line action in the audit log.
async fn cli_audit(store: &Store, clock: &Clock, what: &str, target: &str, detail: String) {
    let action = audit::Action { what, target, status: 0, detail };
    audit::record_or_log(store, clock, &audit::Who::cli(), action).await;
}

/// The key of address fingerprints (suppressions, login throttling), from
/// the secret key as in the server; the stored fingerprints are converted
/// first if this is the first start since the upgrade to keyed ones.
async fn address_key(
    store: &Store,
    clock: &Clock,
    config: &Config,
) -> Result<crate::domain::AddressKey, Box<dyn std::error::Error>> {
    let secret_key = crate::services::setup::bootstrap(store, clock, config).await?;
    let key = crate::domain::AddressKey::derive(&secret_key);
    crate::services::fingerprints::convert_at_start(store, &key).await?;
    Ok(key)
}

async fn erase(config: &Config, clock: &Clock, email: &str) -> Result<(), Box<dyn std::error::Error>> {
    let store = migrated(config).await?;
    let key = address_key(&store, clock, config).await?;
    let erased = match privacy_ops::erase_by_email(&store, clock, &key, email, &Actor::System).await {
        Ok(erased) => erased,
        Err(ServiceError::NotFound(_)) => return Err(format!("no subscriber with the address {}", email.trim()).into()),
        Err(e) => return Err(e.into()),
    };
    let r = erased.removed;
    cli_audit(&store, clock, "cli.erase", &format!("subscriber:{}", erased.id), String::new()).await;
    println!("erased {} (subscriber {})", erased.email, erased.id);
    println!(
        "removed: {} subscriptions, {} consent events, {} confirmation links, {} deliveries; {} queued mails cancelled",
        r.subscriptions, r.consent_events, r.confirmation_tokens, r.deliveries, r.outbox_cancelled
    );
    println!("the address is on the suppression list and will never be mailed again");
    Ok(())
}

async fn check(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    println!("configuration: ok");
    let store = Store::connect(&config.database_url).await?;
    store.ping().await?;
    println!("database: ok ({:?})", store.backend());
    let transport = crate::mail::Transport::from_config(config.smtp_url.as_ref(), &config.outbox_dir, 1)?;
    let how = transport.check().await?;
    println!("mail: ok ({how})");
    match &config.verp_domain {
        Some(domain) => println!("bounces: VERP on: every message goes with a signed return path at {domain}"),
        None => println!(
            "bounces: VERP off: mail goes with the From address as return path (set TIDINGS_VERP_DOMAIN, the \
             bounce domain, to tie each bounce to what bounced)"
        ),
    }
    sender_authentication(&config).await?;
    Ok(())
}

/// The sender authentication checks, one line each, and the DKIM record to
/// publish. Informational: `check` fails only on what stops Tidings running.
async fn sender_authentication(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let auth = crate::services::sender_auth::SenderAuth::new(config)?;
    let mode = config.effective_sender_auth();
    let report = auth.report().await;
    println!("sender authentication (TIDINGS_SENDER_AUTH={}):", mode.as_str());
    for check in &report.checks {
        println!("  {:<14} {:<9} {}", check.code, check.status, check.message);
    }
    if let Some(key) = auth.key() {
        let (name, value) = key.txt_record();
        println!("publish this DKIM record: {name} TXT \"{value}\"");
    }
    if !report.failures().is_empty() && mode == crate::config::SenderAuthMode::Require {
        println!("bulk sends will be refused until the failed checks pass (an admin may override one send)");
    }
    Ok(())
}

/// `tidings bounces ingest`: one message on stdin, its outcome on stdout.
async fn ingest_bounce(config: Config, clock: Clock) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Read;
    const LIMIT: u64 = crate::mail::mailbox::MAX_MESSAGE_BYTES;
    let mut raw = Vec::new();
    std::io::stdin().lock().take(LIMIT + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 > LIMIT {
        return Err(format!("the message is larger than {LIMIT} bytes").into());
    }
    let parsed = crate::services::bounces::read_message(&config, &raw)
        .await
        .map_err(|e| format!("cannot read the report: {e}"))?;
    for reason in &parsed.ignored {
        println!("ignored: {reason}");
    }
    if parsed.reports.is_empty() {
        return Ok(());
    }
    let app = App::build(config, clock).await?;
    for outcome in crate::services::bounces::ingest(&app.ctx, &parsed).await? {
        println!("{outcome}");
    }
    app.ctx.store.close().await;
    Ok(())
}
