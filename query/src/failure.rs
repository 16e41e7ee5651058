//! Whether a call failed, in its protocol's own terms: one definition,
//! as SQL over the `calls` view, for MCP's statistics and the
//! investigations alike.
//!
//! - HTTP (gRPC and GraphQL ride on it): a status of 400 or more, or no
//!   response (status 0);
//! - DNS: a response code other than NOERROR, or no answer;
//! - the other protocols: no answer where one was due (`error` is
//!   `no_response` or `capture_end`);
//! - and, whatever the status: a non-OK gRPC status, GraphQL errors, a
//!   Redis error reply, a database error, a Kafka error code, an AMQP
//!   reply code above 200.

use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{cast, lit};

macro_rules! no_response_sql {
    () => {
        "(protocol IN ('http', 'grpc', 'graphql') AND COALESCE(status_code, 0) = 0) \
         OR (protocol = 'dns' AND response_timestamp IS NULL) \
         OR (protocol NOT IN ('http', 'grpc', 'graphql', 'dns') AND COALESCE(error IN ('no_response', 'capture_end'), false))"
    };
}

/// The call got no answer where one was due.
pub const NO_RESPONSE_SQL: &str = no_response_sql!();

/// The call failed (see the module docs).
pub const FAILED_SQL: &str = concat!(
    "(",
    no_response_sql!(),
    ") OR (protocol IN ('http', 'grpc', 'graphql') AND COALESCE(status_code, 0) >= 400) \
     OR (protocol = 'dns' AND COALESCE(status_code, 0) <> 0) \
     OR COALESCE(grpc_status, 0) <> 0 OR COALESCE(gql_errors, 0) > 0 OR redis_error IS NOT NULL \
     OR NOT COALESCE(db_success, true) OR COALESCE(kafka_error_code, 0) <> 0 OR COALESCE(amqp_reply_code, 0) > 200"
);

/// Adds, as nulls, the `api_calls` columns a snapshot of an earlier
/// version lacks (none of its calls is of the protocols they describe),
/// so that SQL naming them runs over every snapshot.
pub fn with_every_call_column(mut df: DataFrame) -> Result<DataFrame, DataFusionError> {
    for c in trawl_schemas::API_CALLS.columns {
        if !df.schema().has_column_with_unqualified_name(c.name) {
            df = df.with_column(c.name, cast(lit(ScalarValue::Null), c.ty.arrow_type()))?;
        }
    }
    Ok(df)
}
