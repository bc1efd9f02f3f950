//! The crate's error type.

/// A failure of a tenancy operation. The variants a client can cause (`Invalid`, `NotFound`,
/// `Conflict`) carry messages fit for an HTTP answer; the others are for the log.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("quota journal {path}: {source}")]
    Journal {
        path: String,
        source: std::io::Error,
    },
    #[error("the operating system RNG failed")]
    Rng,
    /// Bad input, with the message to show.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// A name already taken, a plan still in use, …
    #[error("{0}")]
    Conflict(String),
    /// A stored value did not parse.
    #[error("corrupt {0} in the database")]
    Corrupt(&'static str),
    #[error("invalid PostgreSQL schema name {0:?}")]
    BadSchema(String),
}

impl From<crate::plan::PlanError> for TenancyError {
    fn from(err: crate::plan::PlanError) -> Self {
        TenancyError::Invalid(err.0)
    }
}
