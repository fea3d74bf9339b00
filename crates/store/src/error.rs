//! What can go wrong with the ledger store, and whether trying again may help.
//!
//! [`StoreError::is_transient`] is the one classification of the scylla driver's errors: the
//! database unreachable, timing out, overloaded, bootstrapping or without enough replicas is
//! transient; a bad keyspace name, a query the database refuses as invalid, refused
//! credentials and results this code cannot read are permanent. Errors the driver may add later
//! count as transient: a caller retrying them is bounded by its own deadline, whereas treating
//! an outage as permanent would stop a service that only had to wait.

use hookline_backoff::Failure;
use scylla::errors::{
    ConnectionError, ConnectionPoolError, ConnectionSetupRequestErrorKind, DbError, ExecutionError,
    MetadataError, NewSessionError, PrepareError, RequestAttemptError, SchemaAgreementError,
    UseKeyspaceError,
};

use crate::cursor::BadCursor;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid keyspace name `{0}`: letters, digits and `_`, starting with a letter")]
    InvalidKeyspace(String),
    #[error("could not connect to the ledger database")]
    Connect(#[from] NewSessionError),
    #[error("could not prepare a ledger statement")]
    Prepare(#[from] PrepareError),
    #[error("ledger query failed")]
    Execute(#[from] ExecutionError),
    #[error("schema did not reach agreement")]
    SchemaAgreement(#[from] SchemaAgreementError),
    #[error("unexpected ledger result")]
    Rows(#[from] scylla::response::query_result::IntoRowsResultError),
    #[error("unexpected ledger row")]
    Row(#[from] scylla::response::query_result::RowsError),
    #[error("unexpected ledger row")]
    FirstRow(#[from] scylla::response::query_result::MaybeFirstRowError),
    #[error("unreadable ledger row")]
    Deserialize(#[from] scylla::deserialize::DeserializationError),
    #[error(transparent)]
    Cursor(BadCursor),
}

impl StoreError {
    /// This error as the retry loop sees it.
    pub fn classified(self) -> Failure<Self> {
        if self.is_transient() {
            Failure::Transient(self)
        } else {
            Failure::Permanent(self)
        }
    }

    /// Whether retrying later may succeed (the database is unreachable, starting, overloaded or
    /// short of replicas), as opposed to a bad configuration, refused credentials or a bug.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect(error) => new_session_is_transient(error),
            Self::Prepare(error) => prepare_is_transient(error),
            Self::Execute(error) => execution_is_transient(error),
            Self::SchemaAgreement(error) => schema_agreement_is_transient(error),
            Self::InvalidKeyspace(_)
            | Self::Rows(_)
            | Self::Row(_)
            | Self::FirstRow(_)
            | Self::Deserialize(_)
            | Self::Cursor(_) => false,
        }
    }
}

fn new_session_is_transient(error: &NewSessionError) -> bool {
    match error {
        // Names that do not resolve yet (a Kubernetes Service being created) resolve later.
        NewSessionError::FailedToResolveAnyHostname(_) => true,
        NewSessionError::EmptyKnownNodesList | NewSessionError::IllegalConfig(_) => false,
        NewSessionError::MetadataError(error) => metadata_is_transient(error),
        NewSessionError::UseKeyspaceError(error) => use_keyspace_is_transient(error),
        _ => true,
    }
}

fn metadata_is_transient(error: &MetadataError) -> bool {
    match error {
        MetadataError::ConnectionPoolError(error) => pool_is_transient(error),
        // Peers, keyspaces and tables a starting cluster has not settled yet.
        _ => true,
    }
}

fn pool_is_transient(error: &ConnectionPoolError) -> bool {
    match error {
        ConnectionPoolError::Broken {
            last_connection_error,
        } => connection_is_transient(last_connection_error),
        ConnectionPoolError::NodeDisabledByHostFilter => false,
        _ => true,
    }
}

fn connection_is_transient(error: &ConnectionError) -> bool {
    match error {
        ConnectionError::ConnectionSetupRequestError(setup) => match &setup.error {
            ConnectionSetupRequestErrorKind::DbError(error, _) => db_is_transient(error),
            ConnectionSetupRequestErrorKind::MissingAuthentication
            | ConnectionSetupRequestErrorKind::StartAuthSessionError(_)
            | ConnectionSetupRequestErrorKind::AuthChallengeEvaluationError(_)
            | ConnectionSetupRequestErrorKind::AuthFinishError(_) => false,
            _ => true,
        },
        ConnectionError::UseKeyspaceError(error) => use_keyspace_is_transient(error),
        // Refused, reset, timed out, or broken after it was established.
        _ => true,
    }
}

fn use_keyspace_is_transient(error: &UseKeyspaceError) -> bool {
    match error {
        UseKeyspaceError::BadKeyspaceName(_) | UseKeyspaceError::KeyspaceNameMismatch { .. } => {
            false
        }
        UseKeyspaceError::RequestError(error) => attempt_is_transient(error),
        _ => true,
    }
}

fn prepare_is_transient(error: &PrepareError) -> bool {
    match error {
        PrepareError::ConnectionPoolError(error) => pool_is_transient(error),
        PrepareError::AllAttemptsFailed { first_attempt } => attempt_is_transient(first_attempt),
        _ => true,
    }
}

fn execution_is_transient(error: &ExecutionError) -> bool {
    match error {
        ExecutionError::BadQuery(_) => false,
        ExecutionError::PrepareError(error) => prepare_is_transient(error),
        ExecutionError::ConnectionPoolError(error) => pool_is_transient(error),
        ExecutionError::LastAttemptError(error) => attempt_is_transient(error),
        ExecutionError::UseKeyspaceError(error) => use_keyspace_is_transient(error),
        ExecutionError::SchemaAgreementError(error) => schema_agreement_is_transient(error),
        ExecutionError::MetadataError(error) => metadata_is_transient(error),
        _ => true,
    }
}

fn schema_agreement_is_transient(error: &SchemaAgreementError) -> bool {
    match error {
        SchemaAgreementError::ConnectionPoolError(error) => pool_is_transient(error),
        SchemaAgreementError::PrepareError(error) => prepare_is_transient(error),
        SchemaAgreementError::RequestError(error) => attempt_is_transient(error),
        _ => true,
    }
}

fn attempt_is_transient(error: &RequestAttemptError) -> bool {
    match error {
        RequestAttemptError::DbError(error, _) => db_is_transient(error),
        RequestAttemptError::SerializationError(_)
        | RequestAttemptError::CqlRequestSerialization(_) => false,
        _ => true,
    }
}

/// What the database itself answered.
fn db_is_transient(error: &DbError) -> bool {
    match error {
        DbError::SyntaxError
        | DbError::Invalid
        | DbError::AlreadyExists { .. }
        | DbError::FunctionFailure { .. }
        | DbError::AuthenticationError
        | DbError::Unauthorized
        | DbError::ConfigError
        | DbError::ProtocolError => false,
        // Unavailable, overloaded, bootstrapping, read and write timeouts and failures, server
        // errors, rate limits: the database or its replicas are not there yet.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use scylla::errors::BadKeyspaceName;
    use scylla::frame::types::Consistency;

    use super::*;

    fn database_says(error: DbError) -> StoreError {
        StoreError::Execute(ExecutionError::LastAttemptError(
            RequestAttemptError::DbError(error, "answered by the database".into()),
        ))
    }

    fn cannot_connect(error: ConnectionError) -> StoreError {
        StoreError::Connect(NewSessionError::MetadataError(
            MetadataError::ConnectionPoolError(ConnectionPoolError::Broken {
                last_connection_error: error,
            }),
        ))
    }

    #[test]
    fn a_database_away_or_overloaded_is_transient() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(cannot_connect(ConnectionError::IoError(Arc::new(refused))).is_transient());
        assert!(cannot_connect(ConnectionError::ConnectTimeout).is_transient());
        assert!(
            StoreError::Connect(NewSessionError::FailedToResolveAnyHostname(vec![
                "scylla:9042".into()
            ]))
            .is_transient()
        );
        assert!(database_says(DbError::Overloaded).is_transient());
        assert!(database_says(DbError::IsBootstrapping).is_transient());
        assert!(database_says(DbError::Unavailable {
            consistency: Consistency::Quorum,
            required: 2,
            alive: 1,
        })
        .is_transient());
        assert!(StoreError::Execute(ExecutionError::RequestTimeout(
            std::time::Duration::from_secs(5)
        ))
        .is_transient());
        assert!(StoreError::Execute(ExecutionError::ConnectionPoolError(
            ConnectionPoolError::Initializing
        ))
        .is_transient());
    }

    #[test]
    fn a_bad_keyspace_a_refused_query_or_refused_credentials_is_permanent() {
        assert!(!StoreError::InvalidKeyspace("1bad".into()).is_transient());
        assert!(!StoreError::Connect(NewSessionError::EmptyKnownNodesList).is_transient());
        assert!(!StoreError::Connect(NewSessionError::UseKeyspaceError(
            UseKeyspaceError::BadKeyspaceName(BadKeyspaceName::Empty)
        ))
        .is_transient());
        assert!(!database_says(DbError::SyntaxError).is_transient());
        assert!(!database_says(DbError::Invalid).is_transient());
        assert!(!database_says(DbError::Unauthorized).is_transient());
        assert!(!database_says(DbError::AuthenticationError).is_transient());
        assert!(!database_says(DbError::ConfigError).is_transient());
        let prepare_refused = PrepareError::AllAttemptsFailed {
            first_attempt: RequestAttemptError::DbError(DbError::Invalid, "no such table".into()),
        };
        assert!(!StoreError::Prepare(prepare_refused).is_transient());
    }
}
