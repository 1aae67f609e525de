//! Several statements sent to the database as one query.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every
//! statement is a round trip between threads: a wake-up there and a wake-up
//! back. A batch that writes five tables spent more time in those wake-ups
//! than in SQLite. On SQLite a [`Script`] joins the statements into one text
//! (sqlx runs every statement of a query in turn, on that thread) with
//! their parameters renumbered to follow on from each other's.
//!
//! PostgreSQL runs one statement per prepared query, so there a [`Script`]
//! joins them as data-modifying `WITH` clauses of one statement: one round
//! trip, one parse, one plan and one executor start instead of one each.
//! The clauses run on one snapshot and cannot see each other's rows, so a
//! script never writes a row two of its statements both touch; foreign
//! keys are checked at the end of the statement, when every clause's rows
//! are there.
//!
//! Each statement is written once for both databases (`super::batch`).

use super::batch::Statement;
use super::{Backend, Result, Tx};
use sqlx::postgres::PgArguments;
use sqlx::sqlite::SqliteArguments;

/// Statements that write, run in order as one query.
#[derive(Default)]
pub(crate) struct Script<'a> {
    statements: Vec<Statement<'a>>,
}

impl<'a> Script<'a> {
    /// Appends a statement; one that writes a batch of no rows is left out.
    pub(crate) fn push(&mut self, statement: Statement<'a>) {
        if !statement.has_no_rows() {
            self.statements.push(statement);
        }
    }

    /// Each statement's text for `backend`, parameters numbered in turn.
    fn texts(&self, backend: Backend) -> Vec<String> {
        let mut offset = 0;
        self.statements
            .iter()
            .map(|statement| {
                let (sql, taken) = statement.render(backend, offset);
                offset += taken;
                sql
            })
            .collect()
    }
}

impl Tx {
    /// Runs every statement of `script`, in order, in one round trip.
    pub(crate) async fn run_script(&mut self, script: Script<'_>) -> Result<()> {
        self.execute_script(script).await?;
        Ok(())
    }

    /// [`Tx::run_script`], saying how many rows were written (meaningful
    /// for a script of one statement).
    pub(super) async fn execute_script(&mut self, script: Script<'_>) -> Result<u64> {
        if script.statements.is_empty() {
            return Ok(0);
        }
        let done = match self {
            Tx::Sqlite(t) => {
                let sql = script.texts(Backend::Sqlite).join(";\n");
                let mut args = SqliteArguments::default();
                for statement in &script.statements {
                    statement.add_sqlite(&mut args)?;
                }
                sqlx::query_with(sqlx::AssertSqlSafe(sql), args).execute(&mut **t).await?.rows_affected()
            }
            Tx::Postgres(t) => {
                let mut texts = script.texts(Backend::Postgres);
                let sql = if texts.len() == 1 {
                    texts.swap_remove(0)
                } else {
                    let clauses: Vec<String> =
                        texts.iter().enumerate().map(|(i, statement)| format!("w{i} AS ({statement})")).collect();
                    format!("WITH {} SELECT 1", clauses.join(",\n"))
                };
                let mut args = PgArguments::default();
                for statement in &script.statements {
                    statement.add_postgres(&mut args)?;
                }
                sqlx::query_with(sqlx::AssertSqlSafe(sql), args).execute(&mut **t).await?.rows_affected()
            }
        };
        Ok(done)
    }
}
