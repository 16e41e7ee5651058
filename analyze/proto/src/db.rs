//! What a database exchange says, for its row: shared by PostgreSQL,
//! MySQL and MongoDB, whose rows fill the same `db_*` columns.

/// A database request and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Info {
    /// The request: PostgreSQL's first message of the exchange (`Query`,
    /// `Parse`, `Bind`, `StartupMessage`, ...), MySQL's command
    /// (`COM_QUERY`, ...), MongoDB's command (`find`, `insert`, ...).
    pub command: String,
    /// The SQL text (cut at [`QUERY_KEEP`] bytes); MongoDB: the command
    /// document as JSON-like text.
    pub query: Option<String>,
    pub database: Option<String>,
    pub user: Option<String>,
    /// MongoDB: the collection the command names.
    pub collection: Option<String>,
    /// A prepared statement: PostgreSQL's name, MySQL's id.
    pub statement: Option<String>,
    /// What the server said it did: PostgreSQL's command tag (`INSERT 0 1`),
    /// MySQL's `OK`/`result set`, MongoDB's `ok`.
    pub result: Option<String>,
    /// Rows (documents) returned.
    pub rows: Option<u64>,
    /// The server answered without an error (true too for a request that
    /// expects no answer: PostgreSQL's Terminate, MySQL's COM_QUIT, ...).
    /// None when an answer was expected and not captured.
    pub success: Option<bool>,
    /// PostgreSQL's SQLSTATE, MySQL's error number, MongoDB's code.
    pub error_code: Option<String>,
    /// MySQL's SQLSTATE, MongoDB's code name.
    pub error_name: Option<String>,
    pub error_message: Option<String>,
}

/// Bytes of SQL (or a MongoDB command) kept for a row.
pub const QUERY_KEEP: usize = 4096;
/// Bytes of names and messages kept.
pub(crate) const NAME_KEEP: usize = 256;
