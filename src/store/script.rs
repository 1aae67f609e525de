//! Several SQLite statements sent to the connection as one query.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every
//! statement is a round trip between threads: a wake-up there and a wake-up
//! back. A batch that writes five tables spent more time in those wake-ups
//! than in SQLite. A [`SqliteScript`] joins the statements into one text
//! (sqlx runs every statement of a query in turn, on that thread) with
//! their parameters renumbered to follow on from each other's.

use super::{Result, StoreError};
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, Encode, Sqlite, SqliteConnection, Type};

#[derive(Default)]
pub(crate) struct SqliteScript {
    sql: String,
    args: SqliteArguments,
}

/// The values of one statement of a [`SqliteScript`], in parameter order.
pub(crate) struct Binds<'s> {
    args: &'s mut SqliteArguments,
    result: Result<(), sqlx::error::BoxDynError>,
}

impl Binds<'_> {
    pub(crate) fn bind<'t, T: Encode<'t, Sqlite> + Type<Sqlite> + 't>(&mut self, value: T) -> &mut Self {
        if self.result.is_ok() {
            self.result = self.args.add(value);
        }
        self
    }
}

impl SqliteScript {
    /// Appends one statement written with parameters `$1`…`$n`, and its
    /// `n` values (bound by `values`, in order).
    pub(crate) fn push(&mut self, sql: &str, values: impl FnOnce(&mut Binds<'_>)) -> Result<&mut Self> {
        let offset = self.args.len();
        self.sql.push_str(&renumbered(sql, offset));
        self.sql.push_str(";\n");
        let mut binds = Binds { args: &mut self.args, result: Ok(()) };
        values(&mut binds);
        binds.result.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
        Ok(self)
    }

    /// Runs every statement, in order, in one round trip.
    pub(crate) async fn run(self, conn: &mut SqliteConnection) -> Result<()> {
        if self.sql.is_empty() {
            return Ok(());
        }
        sqlx::query_with(sqlx::AssertSqlSafe(self.sql), self.args).execute(conn).await?;
        Ok(())
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
