//! A batch of rows as a table, so each set statement is written once for
//! both databases.
//!
//! A [`Statement`] is SQL text with its scalar parameters `$1`…`$k` and at
//! most one batch of [`Rows`], which the text names by a placeholder:
//! - `{rows}`, the rows as a table `u` with named columns (`u.id`,
//!   `u.email`…). On SQLite it is `(SELECT unhex(j.value ->> 0) AS id, …
//!   FROM json_each($n) j) AS u`, the whole batch one JSON array bound to
//!   one parameter (ids as 32 hex digits for `unhex`, times as sqlx writes
//!   them); SQLite flattens that subquery into the statement, so it costs
//!   what the accessors written inline did. On PostgreSQL it is
//!   `UNNEST($n::uuid[], $n+1::text[], …) AS u(id, email, …)`, one typed
//!   array per column.
//! - `{in_set}`, after a column, for the one column of a set: `IN (SELECT
//!   value FROM json_each($n))` on SQLite, `= ANY($n)` on PostgreSQL (an
//!   index lookup per value; PostgreSQL would plan `IN (SELECT … UNNEST)`
//!   as a join).
//!
//! Either way the text is fixed whatever the batch size, so each statement
//! is prepared once per connection, and a batch of thousands of rows costs
//! one statement, not thousands. Statements run alone ([`Tx::write_rows`],
//! [`Tx::fetch_rows`]) or several as one query (`super::script`).

use super::script::Script;
use super::{Backend, Result, StoreError, Tx};
use chrono::{DateTime, Utc};
use serde::ser::{Serialize, SerializeSeq, Serializer};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Database, Encode, Type};
use std::fmt::Write as _;
use uuid::Uuid;

/// One value bound to a scalar parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Uuid(Option<Uuid>),
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bool(bool),
    Time(Option<DateTime<Utc>>),
}

impl From<Uuid> for Value<'_> {
    fn from(v: Uuid) -> Self {
        Value::Uuid(Some(v))
    }
}
impl From<Option<Uuid>> for Value<'_> {
    fn from(v: Option<Uuid>) -> Self {
        Value::Uuid(v)
    }
}
impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Value::Text(v)
    }
}
impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<DateTime<Utc>> for Value<'_> {
    fn from(v: DateTime<Utc>) -> Self {
        Value::Time(Some(v))
    }
}

/// The values of one column of a batch, a row each.
enum Column<'a> {
    Uuid(Vec<Option<Uuid>>),
    Text(Vec<Option<&'a str>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<bool>),
    Time(Vec<DateTime<Utc>>),
}

impl Column<'_> {
    fn len(&self) -> usize {
        match self {
            Column::Uuid(v) => v.len(),
            Column::Text(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Time(v) => v.len(),
        }
    }

    /// Its PostgreSQL array type, and how SQLite reads it from `json`.
    fn sql(&self, json: &str) -> (&'static str, String) {
        match self {
            Column::Uuid(_) => ("uuid[]", format!("unhex({json})")),
            Column::Text(_) => ("text[]", json.to_owned()),
            Column::Int(_) => ("bigint[]", json.to_owned()),
            Column::Bool(_) => ("bool[]", json.to_owned()),
            Column::Time(_) => ("timestamptz[]", json.to_owned()),
        }
    }
}

/// A batch of rows, built a column at a time (each from the same slice of
/// rows, so all of one length).
#[derive(Default)]
pub(crate) struct Rows<'a> {
    columns: Vec<(&'static str, Column<'a>)>,
}

impl<'a> Rows<'a> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn uuid<V: Into<Option<Uuid>>>(mut self, name: &'static str, v: impl Iterator<Item = V>) -> Self {
        self.columns.push((name, Column::Uuid(v.map(Into::into).collect())));
        self
    }

    pub(crate) fn text<V: Into<Option<&'a str>>>(mut self, name: &'static str, v: impl Iterator<Item = V>) -> Self {
        self.columns.push((name, Column::Text(v.map(Into::into).collect())));
        self
    }

    pub(crate) fn int<V: Into<Option<i64>>>(mut self, name: &'static str, v: impl Iterator<Item = V>) -> Self {
        self.columns.push((name, Column::Int(v.map(Into::into).collect())));
        self
    }

    pub(crate) fn flag(mut self, name: &'static str, v: impl Iterator<Item = bool>) -> Self {
        self.columns.push((name, Column::Bool(v.collect())));
        self
    }

    pub(crate) fn time(mut self, name: &'static str, v: impl Iterator<Item = DateTime<Utc>>) -> Self {
        self.columns.push((name, Column::Time(v.collect())));
        self
    }

    fn len(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// The `{rows}` fragment, its parameters numbered from `$first`.
    fn table(&self, backend: Backend, first: usize) -> String {
        let mut out = String::new();
        match backend {
            Backend::Sqlite => {
                out.push_str("(SELECT ");
                for (k, (name, column)) in self.columns.iter().enumerate() {
                    let (_, read) = column.sql(&format!("j.value ->> {k}"));
                    let comma = if k == 0 { "" } else { ", " };
                    let _ = write!(out, "{comma}{read} AS {name}");
                }
                let _ = write!(out, " FROM json_each(${first}) j) AS u");
            }
            Backend::Postgres => {
                out.push_str("UNNEST(");
                for (k, (_, column)) in self.columns.iter().enumerate() {
                    let (array, _) = column.sql("");
                    let comma = if k == 0 { "" } else { ", " };
                    let _ = write!(out, "{comma}${}::{array}", first + k);
                }
                let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
                let _ = write!(out, ") AS u({})", names.join(", "));
            }
        }
        out
    }

    /// The `{in_set}` fragment (the first column), its parameter `$first`.
    fn membership(&self, backend: Backend, first: usize) -> String {
        match (backend, self.columns.first()) {
            (Backend::Sqlite, Some((_, column))) => {
                let (_, read) = column.sql("value");
                format!("IN (SELECT {read} FROM json_each(${first}))")
            }
            (Backend::Postgres, _) | (Backend::Sqlite, None) => format!("= ANY(${first})"),
        }
    }

    /// How many parameters the fragment takes.
    fn parameters(&self, backend: Backend, set: bool) -> usize {
        match backend {
            Backend::Sqlite => 1,
            Backend::Postgres if set => 1,
            Backend::Postgres => self.columns.len(),
        }
    }

    /// The SQLite parameter: the rows as one JSON array of arrays (or, for
    /// a set, of the values).
    fn json(&self, set: bool) -> Result<String> {
        serde_json::to_string(&Json { rows: self, set })
            .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))
    }

    /// The PostgreSQL parameters: one array per column (or, for a set, the
    /// first column's).
    fn add_arrays(&self, args: &mut PgArguments, set: bool) -> Result<(), BoxDynError> {
        let columns = if set { &self.columns[..self.columns.len().min(1)] } else { &self.columns[..] };
        for (_, column) in columns {
            match column {
                Column::Uuid(v) => args.add(v.as_slice())?,
                Column::Text(v) => args.add(v.as_slice())?,
                Column::Int(v) => args.add(v.as_slice())?,
                Column::Bool(v) => args.add(v.as_slice())?,
                Column::Time(v) => args.add(v.as_slice())?,
            }
        }
        Ok(())
    }
}

/// The batch as JSON: an array of rows, each an array of its values; for
/// a set, an array of the first column's values.
struct Json<'r, 'a> {
    rows: &'r Rows<'a>,
    set: bool,
}
/// Row `.1` as JSON.
struct JsonRow<'r, 'a>(&'r Rows<'a>, usize);
/// Row `.1` of a column as JSON.
struct JsonCell<'r, 'a>(&'r Column<'a>, usize);

impl Serialize for Json<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len = self.rows.len();
        let mut seq = s.serialize_seq(Some(len))?;
        for i in 0..len {
            match (self.set, self.rows.columns.first()) {
                (true, Some((_, column))) => seq.serialize_element(&JsonCell(column, i))?,
                _ => seq.serialize_element(&JsonRow(self.rows, i))?,
            }
        }
        seq.end()
    }
}

impl Serialize for JsonRow<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.columns.len()))?;
        for (_, column) in &self.0.columns {
            seq.serialize_element(&JsonCell(column, self.1))?;
        }
        seq.end()
    }
}

impl Serialize for JsonCell<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = self.1;
        match self.0 {
            Column::Uuid(v) => match v.get(i).copied().flatten() {
                Some(id) => s.serialize_str(id.simple().encode_lower(&mut Uuid::encode_buffer())),
                None => s.serialize_none(),
            },
            Column::Text(v) => match v.get(i).copied().flatten() {
                Some(text) => s.serialize_str(text),
                None => s.serialize_none(),
            },
            Column::Int(v) => match v.get(i).copied().flatten() {
                Some(n) => s.serialize_i64(n),
                None => s.serialize_none(),
            },
            Column::Bool(v) => match v.get(i) {
                Some(b) => s.serialize_bool(*b),
                None => s.serialize_none(),
            },
            // As sqlx writes a timestamp to SQLite: text columns compare as
            // text, so the form must be the same.
            Column::Time(v) => match v.get(i) {
                Some(at) => s.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)),
                None => s.serialize_none(),
            },
        }
    }
}

/// One statement: SQL text (with `{rows}` or `{in_set}` where it reads a
/// batch), its scalar parameters in order, and the batch.
pub(crate) struct Statement<'a> {
    sql: &'static str,
    params: Vec<Value<'a>>,
    rows: Option<Rows<'a>>,
    prepared: bool,
}

impl<'a> Statement<'a> {
    pub(crate) fn new(sql: &'static str) -> Self {
        Self { sql, params: Vec::new(), rows: None, prepared: true }
    }

    /// The next scalar parameter (`$1`, `$2`, … in the order bound).
    pub(crate) fn bind(mut self, value: impl Into<Value<'a>>) -> Self {
        self.params.push(value.into());
        self
    }

    /// The batch `{rows}` or `{in_set}` stands for; its parameters follow
    /// the scalar ones.
    pub(crate) fn rows(mut self, rows: Rows<'a>) -> Self {
        self.rows = Some(rows);
        self
    }

    /// A read of a table that grows with the list: prepared on PostgreSQL
    /// only as [`super::connection::PREPARE_GROWING_READS`] says (and why).
    pub(crate) fn unprepared(mut self) -> Self {
        self.prepared = super::connection::PREPARE_GROWING_READS;
        self
    }

    /// A batch with no rows: nothing to write, nothing to find.
    pub(crate) fn has_no_rows(&self) -> bool {
        self.rows.as_ref().is_some_and(|r| r.len() == 0)
    }

    fn is_set(&self) -> bool {
        self.sql.contains("{in_set}")
    }

    /// The text for `backend`, its parameters numbered from `$(offset + 1)`,
    /// and how many parameters it takes.
    pub(super) fn render(&self, backend: Backend, offset: usize) -> (String, usize) {
        let first = self.params.len() + 1;
        let (sql, taken) = match &self.rows {
            Some(rows) if self.is_set() => {
                (self.sql.replace("{in_set}", &rows.membership(backend, first)), rows.parameters(backend, true))
            }
            Some(rows) => (self.sql.replace("{rows}", &rows.table(backend, first)), rows.parameters(backend, false)),
            None => (self.sql.to_owned(), 0),
        };
        let sql = if offset == 0 { sql } else { renumbered(&sql, offset) };
        (sql, self.params.len() + taken)
    }

    pub(super) fn add_sqlite(&self, args: &mut SqliteArguments) -> Result<()> {
        for value in &self.params {
            add_value::<sqlx::Sqlite>(args, *value).map_err(encode_error)?;
        }
        if let Some(rows) = &self.rows {
            let json = rows.json(self.is_set())?;
            args.add(json).map_err(encode_error)?;
        }
        Ok(())
    }

    pub(super) fn add_postgres(&self, args: &mut PgArguments) -> Result<()> {
        for value in &self.params {
            add_value::<sqlx::Postgres>(args, *value).map_err(encode_error)?;
        }
        if let Some(rows) = &self.rows {
            rows.add_arrays(args, self.is_set()).map_err(encode_error)?;
        }
        Ok(())
    }

    pub(super) fn is_prepared(&self) -> bool {
        self.prepared
    }
}

fn encode_error(e: BoxDynError) -> StoreError {
    StoreError::Database(sqlx::Error::Encode(e))
}

/// Binds one scalar on either database.
fn add_value<DB: Database>(args: &mut DB::Arguments, value: Value<'_>) -> Result<(), BoxDynError>
where
    Option<Uuid>: for<'q> Encode<'q, DB> + Type<DB>,
    for<'s> Option<&'s str>: Encode<'s, DB> + Type<DB>,
    Option<i64>: for<'q> Encode<'q, DB> + Type<DB>,
    bool: for<'q> Encode<'q, DB> + Type<DB>,
    Option<DateTime<Utc>>: for<'q> Encode<'q, DB> + Type<DB>,
{
    match value {
        Value::Uuid(v) => args.add(v),
        Value::Text(v) => args.add(v),
        Value::Int(v) => args.add(v),
        Value::Bool(v) => args.add(v),
        Value::Time(v) => args.add(v),
    }
}

/// `sql` with every parameter `$n` written as `$(n + offset)`. Only for our
/// own statements: they have no `$` inside string literals.
pub(super) fn renumbered(sql: &str, offset: usize) -> String {
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

impl Tx {
    /// Runs one statement that writes a batch (nothing when it has no rows).
    pub(crate) async fn write_rows(&mut self, statement: Statement<'_>) -> Result<()> {
        self.count_written(statement).await?;
        Ok(())
    }

    /// Runs one statement that writes a batch, and says how many rows it
    /// wrote.
    pub(crate) async fn count_written(&mut self, statement: Statement<'_>) -> Result<u64> {
        let mut script = Script::default();
        script.push(statement);
        self.execute_script(script).await
    }

    /// The rows one statement reads (none when its batch is empty).
    pub(crate) async fn fetch_rows<T>(&mut self, statement: Statement<'_>) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
    {
        if statement.has_no_rows() {
            return Ok(Vec::new());
        }
        let rows = match self {
            Tx::Sqlite(t) => {
                let (sql, _) = statement.render(Backend::Sqlite, 0);
                let mut args = SqliteArguments::default();
                statement.add_sqlite(&mut args)?;
                sqlx::query_as_with(sqlx::AssertSqlSafe(sql), args).fetch_all(&mut **t).await?
            }
            Tx::Postgres(t) => {
                let (sql, _) = statement.render(Backend::Postgres, 0);
                let mut args = PgArguments::default();
                statement.add_postgres(&mut args)?;
                sqlx::query_as_with(sqlx::AssertSqlSafe(sql), args)
                    .persistent(statement.is_prepared())
                    .fetch_all(&mut **t)
                    .await?
            }
        };
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::{Backend, Rows, Statement, renumbered};
    use uuid::Uuid;

    #[test]
    fn parameters_are_shifted_and_the_rest_kept() {
        assert_eq!(renumbered("SELECT $1, $2, $10 FROM t WHERE a = $1", 3), "SELECT $4, $5, $13 FROM t WHERE a = $4");
        assert_eq!(renumbered("SELECT 1", 5), "SELECT 1");
        assert_eq!(renumbered("SELECT $", 5), "SELECT $");
        assert_eq!(renumbered("SELECT $1", 0), "SELECT $1");
    }

    fn pairs() -> Rows<'static> {
        Rows::new().uuid("id", [Uuid::nil()].into_iter()).text("name", ["Ann"].into_iter())
    }

    #[test]
    fn rows_become_a_table_after_the_scalar_parameters() {
        let s = Statement::new("INSERT INTO t (id, name, at) SELECT u.id, u.name, $1 FROM {rows}")
            .bind(chrono::Utc::now())
            .rows(pairs());
        assert_eq!(
            s.render(Backend::Sqlite, 0),
            (
                "INSERT INTO t (id, name, at) SELECT u.id, u.name, $1 FROM \
                 (SELECT unhex(j.value ->> 0) AS id, j.value ->> 1 AS name FROM json_each($2) j) AS u"
                    .to_owned(),
                2
            )
        );
        assert_eq!(
            s.render(Backend::Postgres, 4),
            (
                "INSERT INTO t (id, name, at) SELECT u.id, u.name, $5 FROM UNNEST($6::uuid[], $7::text[]) AS u(id, name)"
                    .to_owned(),
                3
            )
        );
    }

    #[test]
    fn a_set_is_membership_of_its_one_column() {
        let s = Statement::new("SELECT a FROM t WHERE id {in_set} AND b = $1").bind(1_i64).rows(pairs());
        assert_eq!(
            s.render(Backend::Sqlite, 0).0,
            "SELECT a FROM t WHERE id IN (SELECT unhex(value) FROM json_each($2)) AND b = $1"
        );
        assert_eq!(s.render(Backend::Postgres, 0), ("SELECT a FROM t WHERE id = ANY($2) AND b = $1".to_owned(), 2));
    }

    #[test]
    fn sqlite_reads_rows_and_sets_as_json() {
        let rows = Rows::new()
            .uuid("id", [Some(Uuid::from_u128(0xab)), None].into_iter())
            .text("name", ["a\"b", "c"].into_iter())
            .int("n", [Some(3), None].into_iter())
            .flag("f", [true, false].into_iter());
        assert_eq!(
            rows.json(false).ok().as_deref(),
            Some(r#"[["000000000000000000000000000000ab","a\"b",3,true],[null,"c",null,false]]"#)
        );
        assert_eq!(rows.json(true).ok().as_deref(), Some(r#"["000000000000000000000000000000ab",null]"#));
    }

    #[test]
    fn an_empty_batch_has_no_rows() {
        let empty: [Uuid; 0] = [];
        assert!(Statement::new("{rows}").rows(Rows::new().uuid("id", empty.into_iter())).has_no_rows());
        assert!(!Statement::new("{rows}").rows(pairs()).has_no_rows());
        assert!(!Statement::new("SELECT 1").has_no_rows());
    }
}
