//! Several statements sent to the database as one query.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every
//! statement is a round trip between threads: a wake-up there and a wake-up
//! back. A batch that writes five tables spent more time in those wake-ups
//! than in SQLite. A [`SqliteScript`] joins the statements into one text
//! (sqlx runs every statement of a query in turn, on that thread) with
//! their parameters renumbered to follow on from each other's.
//!
//! PostgreSQL runs one statement per prepared query, so a [`PgScript`]
//! joins them as data-modifying `WITH` clauses of one statement: one round
//! trip, one parse, one plan and one executor start instead of one each.
//! The clauses run on one snapshot and cannot see each other's rows, so a
//! script never writes a row two of its statements both touch; foreign
//! keys are checked at the end of the statement, when every clause's rows
//! are there.

use super::{Result, StoreError, Tx};
use sqlx::{Arguments, Database, Encode, PgConnection, Postgres, Sqlite, SqliteConnection, Type};

pub(crate) struct Script<DB: Database> {
    statements: Vec<String>,
    args: DB::Arguments,
}

pub(crate) type SqliteScript = Script<Sqlite>;
pub(crate) type PgScript = Script<Postgres>;

impl<DB: Database> Default for Script<DB> {
    fn default() -> Self {
        Self { statements: Vec::new(), args: DB::Arguments::default() }
    }
}

/// The values of one statement of a [`Script`], in parameter order.
pub(crate) struct Binds<'s, DB: Database> {
    args: &'s mut DB::Arguments,
    result: Result<(), sqlx::error::BoxDynError>,
}

impl<DB: Database> Binds<'_, DB> {
    pub(crate) fn bind<'t, T: Encode<'t, DB> + Type<DB> + 't>(&mut self, value: T) -> &mut Self {
        if self.result.is_ok() {
            self.result = self.args.add(value);
        }
        self
    }
}

impl<DB: Database> Script<DB> {
    /// Appends one statement that writes `rows`, written with parameters
    /// `$1`…`$n`, and its `n` values (bound by `values`, in order). With no
    /// rows there is nothing to write, and no statement is added.
    pub(crate) fn push<R>(&mut self, rows: &[R], sql: &str, values: impl FnOnce(&mut Binds<'_, DB>)) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.statements.push(renumbered(sql, self.args.len()));
        let mut binds = Binds { args: &mut self.args, result: Ok(()) };
        values(&mut binds);
        binds.result.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))
    }
}

impl Script<Sqlite> {
    /// Runs every statement, in order, in one round trip.
    async fn run(self, conn: &mut SqliteConnection) -> Result<()> {
        if self.statements.is_empty() {
            return Ok(());
        }
        let sql = self.statements.join(";\n");
        sqlx::query_with(sqlx::AssertSqlSafe(sql), self.args).execute(conn).await?;
        Ok(())
    }
}

impl Script<Postgres> {
    /// Runs every statement as one (see the module docs).
    async fn run(mut self, conn: &mut PgConnection) -> Result<()> {
        let sql = match self.statements.len() {
            0 => return Ok(()),
            1 => self.statements.swap_remove(0),
            _ => {
                let clauses: Vec<String> =
                    self.statements.iter().enumerate().map(|(i, statement)| format!("w{i} AS ({statement})")).collect();
                format!("WITH {} SELECT 1", clauses.join(",\n"))
            }
        };
        sqlx::query_with(sqlx::AssertSqlSafe(sql), self.args).execute(conn).await?;
        Ok(())
    }
}

impl Tx {
    /// Builds this backend's script (`sqlite` or `postgres` appends its
    /// statements) and runs it in the transaction.
    pub(crate) async fn run_script(
        &mut self,
        sqlite: impl FnOnce(&mut SqliteScript) -> Result<()>,
        postgres: impl FnOnce(&mut PgScript) -> Result<()>,
    ) -> Result<()> {
        match self {
            Tx::Sqlite(t) => {
                let mut script = SqliteScript::default();
                sqlite(&mut script)?;
                script.run(t).await
            }
            Tx::Postgres(t) => {
                let mut script = PgScript::default();
                postgres(&mut script)?;
                script.run(t).await
            }
        }
    }
}

/// `sql` with every parameter `$n` written as `$(n + offset)`. Only for our
/// own statements: they have no `$` inside string literals.
fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::renumbered;

    #[test]
    fn parameters_are_shifted_and_the_rest_kept() {
        assert_eq!(renumbered("SELECT $1, $2, $10 FROM t WHERE a = $1", 3), "SELECT $4, $5, $13 FROM t WHERE a = $4");
        assert_eq!(renumbered("SELECT 1", 5), "SELECT 1");
        assert_eq!(renumbered("SELECT $", 5), "SELECT $");
        assert_eq!(renumbered("SELECT $1", 0), "SELECT $1");
    }
}
