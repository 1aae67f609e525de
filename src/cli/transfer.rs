//! `tidings import` and `tidings export`: the CSV engine of
//! `services::imports` / `services::exports` with a terminal around it (a
//! progress bar on standard error, a summary, the refused rows).

use crate::app::{App, shutdown_on_signals};
use crate::clock::Clock;
use crate::config::Config;
use crate::services::exports::{self, Cursor, Scope};
use crate::services::imports::{self, ColumnChoice, ImportRequest, RunEnd, RunOptions};
use crate::services::lists;
use crate::store::{ImportErrorRow, Store};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::error::Error;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// How many refused rows are printed after the summary (all of them go
/// to `--errors FILE`).
const PRINTED_ERRORS: i64 = 20;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file; its first row names the columns.
    pub file: PathBuf,
    /// A list to add everyone to (repeat for several).
    #[arg(long = "list", required = true)]
    pub lists: Vec<String>,
    /// Why you may mail these people (required for --status confirmed).
    #[arg(long)]
    pub basis: Option<String>,
    /// The kind of basis: consented-elsewhere (say where and when in
    /// --basis), backer-opted-in, soft-opt-in; unspecified when absent.
    #[arg(long, value_enum)]
    pub basis_kind: Option<BasisKindArg>,
    /// Needed for a pending import: its confirmation mail is itself
    /// marketing in the ICO's view (a re-permission campaign).
    #[arg(long)]
    pub confirm_repermission: bool,
    /// confirmed (the default with --basis) or pending (each gets a
    /// confirmation mail: a re-permission campaign).
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// The column holding addresses (default: "email", "e-mail", "email address").
    #[arg(long)]
    pub email_column: Option<String>,
    /// The column holding full names (default: "name").
    #[arg(long)]
    pub name_column: Option<String>,
    /// Columns holding first and last names, joined (default: "first name", "last name").
    #[arg(long)]
    pub first_name_column: Option<String>,
    #[arg(long)]
    pub last_name_column: Option<String>,
    /// Write every refused row (line, outcome, code, message) to this CSV file.
    #[arg(long)]
    pub errors: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BasisKindArg {
    ConsentedElsewhere,
    BackerOptedIn,
    SoftOptIn,
    Unspecified,
}

impl BasisKindArg {
    fn as_str(self) -> &'static str {
        match self {
            BasisKindArg::ConsentedElsewhere => "consented_elsewhere",
            BasisKindArg::BackerOptedIn => "backer_opted_in",
            BasisKindArg::SoftOptIn => "soft_opt_in",
            BasisKindArg::Unspecified => "unspecified",
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Confirmed,
    Pending,
}

type CliResult<T = ()> = Result<T, Box<dyn Error>>;

/// Reads up to `n` bytes from the start of `file`.
fn read_prefix(file: &mut std::fs::File, n: usize) -> std::io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(n);
    Read::by_ref(file).take(n as u64).read_to_end(&mut prefix)?;
    Ok(prefix)
}

pub async fn import(config: Config, clock: Clock, args: ImportArgs) -> CliResult {
    let shown = args.file.display().to_string();
    let mut file = std::fs::File::open(&args.file).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let total = file.metadata().map_err(|e| format!("cannot read {shown}: {e}"))?.len();
    let prefix = read_prefix(&mut file, imports::CHUNK_BYTES).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let whole = prefix.len() as u64 == total;

    let app = App::build(config, clock).await?;
    let ctx = app.ctx;
    let req = ImportRequest {
        lists: args.lists,
        status: args.status.map(|s| match s {
            StatusArg::Confirmed => "confirmed".to_owned(),
            StatusArg::Pending => "pending".to_owned(),
        }),
        basis: args.basis,
        basis_kind: args.basis_kind.map(|k| k.as_str().to_owned()),
        confirm_repermission: args.confirm_repermission,
        columns: ColumnChoice {
            email: args.email_column,
            name: args.name_column,
            first_name: args.first_name_column,
            last_name: args.last_name_column,
        },
    };
    if req.is_pending() && !req.confirm_repermission {
        return Err(format!(
            "refused: this is a pending import. {} Run it again with --confirm-repermission to send the mail.",
            imports::REPERMISSION_WARNING
        )
        .into());
    }
    let owner = format!("cli:{}:{}", std::process::id(), uuid::Uuid::now_v7());
    let filename = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let job = imports::start_local(&ctx, &filename, total, &prefix, whole, &req, &owner).await?;
    file.seek(SeekFrom::Start(job.bytes_done as u64)).map_err(|e| format!("cannot read {shown}: {e}"))?;

    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(job.bytes_done as u64);
    let shown_bar = bar.clone();
    let opts = RunOptions {
        owner: owner.clone(),
        shutdown: Some(shutdown_on_signals()),
        on_batch: Some(Arc::new(move |row| {
            shown_bar.set_position(row.bytes_done as u64);
            shown_bar.set_message(format!("{} rows", row.rows_done));
        })),
    };
    let end = imports::run(&ctx, &job, std::io::BufReader::with_capacity(256 * 1024, file), &opts).await?;
    bar.finish_and_clear();
    if end == RunEnd::Released {
        // Interrupted: this import cannot be resumed without its file.
        let mut tx = ctx.store.write().await?;
        tx.finish_import(
            job.id,
            None,
            crate::store::ImportEnd::Failed,
            Some("interrupted (Ctrl-C or SIGTERM)"),
            ctx.clock.now(),
        )
        .await?;
        tx.commit().await?;
    }

    let detail = imports::get(&ctx, job.id, 0, PRINTED_ERRORS).await?;
    let v = &detail.import;
    let s = v.summary;
    println!(
        "{}: {} rows read: {} added, {} updated, {} skipped, {} suppressed, {} invalid",
        shown, v.progress.rows_done, s.added, s.updated, s.skipped, s.suppressed, s.invalid
    );
    println!("import {} ({}, {})", v.id, v.status, v.lists.join(", "));
    let mut stderr = std::io::stderr().lock();
    for e in &detail.errors {
        writeln!(stderr, "line {}: {} ({}): {}", e.line, e.outcome, e.code, e.message)?;
    }
    if detail.errors_next.is_some() {
        let more = s.skipped + s.suppressed + s.invalid - PRINTED_ERRORS;
        let hint = if args.errors.is_some() { "" } else { " (use --errors FILE to write them all)" };
        writeln!(stderr, "… and {more} more{hint}")?;
    }
    if let Some(path) = &args.errors {
        let written = write_errors(&ctx.store, job.id, path).await?;
        println!("{written} refused rows written to {}", path.display());
    }
    ctx.store.close().await;
    match (v.state.as_str(), &v.error) {
        ("failed", Some(e)) => Err(format!("the import stopped: {e}").into()),
        _ => Ok(()),
    }
}

async fn write_errors(store: &Store, id: uuid::Uuid, path: &std::path::Path) -> CliResult<u64> {
    let file = std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut out = csv::Writer::from_writer(std::io::BufWriter::new(file));
    out.write_record(["line", "outcome", "code", "message"])?;
    let (mut after, mut written) = (0, 0u64);
    loop {
        let page: Vec<ImportErrorRow> = {
            let mut tx = store.read().await?;
            tx.import_errors(id, after, imports::MAX_ERRORS_PAGE).await?
        };
        let Some(last) = page.last() else { break };
        after = last.line;
        for e in &page {
            out.write_record([
                e.line.to_string(),
                e.outcome.clone(),
                e.code.clone(),
                exports::defuse(&e.message).into_owned(),
            ])?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

pub async fn export(config: Config, list: Option<String>) -> CliResult {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let scope = match list {
        None => Scope::All,
        Some(slug) => {
            let mut tx = store.read().await?;
            Scope::List(lists::find(&mut tx, &slug).await.map_err(|_| format!("there is no list {slug}"))?.id)
        }
    };
    let mut cursor = Cursor::new(scope);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while let Some(piece) = exports::next_page(&store, &mut cursor).await? {
        if let Err(e) = out.write_all(&piece) {
            // `tidings export | head` closes the pipe early: not an error.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
