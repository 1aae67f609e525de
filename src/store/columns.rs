//! How the domain's vocabularies (statuses, states, kinds) are stored: as
//! TEXT on both databases, written with their `as_str` spelling and read
//! back through their `parse`. A value the code does not know is a decode
//! error naming the type and the value, never a silent default or a row
//! quietly left out.

/// Implements sqlx's `Type`, `Encode` and `Decode` (for every database whose
/// strings are TEXT) and PostgreSQL's array type for each named type, which
/// must have `fn as_str(self) -> &'static str` and
/// `fn parse(&str) -> Result<Self, crate::domain::ParseError>`.
macro_rules! text_column {
    ($($ty:ident),+ $(,)?) => {$(
        impl<DB: sqlx::Database> sqlx::Type<DB> for $ty
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $ty
        where
            &'static str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'static str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $ty
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let raw = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                <$ty>::parse(raw).map_err(|_| format!("unknown {} {raw:?} in the database", stringify!($ty)).into())
            }
        }

        impl sqlx::postgres::PgHasArrayType for $ty {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::postgres::PgHasArrayType>::array_type_info()
            }

            fn array_compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::postgres::PgHasArrayType>::array_compatible(ty)
            }
        }
    )+};
}

use crate::domain::{
    AlertKind, BasisKind, ConsentKind, DeliveryStatus, ImportState, LedgerEntryKind, MailKind, OutboxStatus,
    RightsAction, RightsKind, RightsStatus, Role, ScheduleKind, SubscriptionStatus, UpdateStatus,
};

text_column!(
    SubscriptionStatus,
    ConsentKind,
    LedgerEntryKind,
    BasisKind,
    UpdateStatus,
    DeliveryStatus,
    ImportState,
    ScheduleKind,
    OutboxStatus,
    MailKind,
    AlertKind,
    RightsKind,
    RightsStatus,
    RightsAction,
    Role
);

#[cfg(test)]
mod tests {
    use super::SubscriptionStatus;
    use sqlx::{Connection, SqliteConnection};

    #[tokio::test]
    async fn round_trips_and_refuses_an_unknown_value() {
        let mut c = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        for s in SubscriptionStatus::ALL {
            let back: SubscriptionStatus = sqlx::query_scalar("SELECT $1").bind(*s).fetch_one(&mut c).await.unwrap();
            assert_eq!(back, *s);
        }
        let unknown = sqlx::query_scalar::<_, SubscriptionStatus>("SELECT 'lapsed'").fetch_one(&mut c).await;
        let message = unknown.unwrap_err().to_string();
        assert!(message.contains("unknown SubscriptionStatus \"lapsed\""), "{message}");
    }
}
