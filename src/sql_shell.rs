//! `trawl sql SNAPSHOT`: DataFusion SQL over a snapshot, read-only.
//!
//! Interactive on a terminal (rustyline: history, multi-line statements
//! ended by `;`, completion of table and column names), or a script from
//! `-c`, `-f` or standard input.

use std::borrow::Cow;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Args;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};
use trawl_query::{Catalog, Format, QueryError, Table};

#[derive(Args)]
pub struct SqlArgs {
    /// A snapshot directory, or a directory of snapshots read as one.
    pub snapshot: PathBuf,
    /// Run these statements (separated by `;`) and exit.
    #[arg(short = 'c', long = "command", value_name = "SQL", conflicts_with = "file")]
    pub command: Option<String>,
    /// Run the statements in this file and exit.
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = |s: &str| s.parse::<Format>())]
    pub format: Format,
    /// Threads for the query engine [default: number of CPUs].
    #[arg(short = 'j', long, default_value_t = 0)]
    pub threads: usize,
    #[command(flatten)]
    pub cluster: crate::cluster_cmd::ClusterTarget,
}

struct Shell {
    cat: Catalog,
    format: Format,
    timing: bool,
}

pub fn run(a: SqlArgs) -> Result<()> {
    trawl_query::block_on(a.threads, async move {
        let snap = trawl_snapshot::workspace::resolve(&a.snapshot, &trawl_snapshot::workspace::workspace_dir(None));
        let engine = a.cluster.engine().await?;
        let cat = Catalog::open_on(&snap, a.threads, &engine).await?;
        let mut sh = Shell { cat, format: a.format, timing: false };
        let script = match (&a.command, &a.file) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(f)) => {
                Some(std::fs::read_to_string(f).with_context(|| format!("{}: cannot read the SQL file", f.display()))?)
            }
            (None, None) if !std::io::stdin().is_terminal() => {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).context("reading SQL from standard input")?;
                Some(s)
            }
            (None, None) => None,
        };
        match script {
            Some(s) => sh.script(&s).await,
            None => sh.interactive().await,
        }
    })?
}

impl Shell {
    /// Runs each statement; stops at the first error.
    async fn script(&mut self, text: &str) -> Result<()> {
        for stmt in split_statements(text) {
            if let Some(cmd) = stmt.strip_prefix('\\') {
                self.backslash(cmd).await?;
            } else {
                self.statement(&stmt).await?;
            }
        }
        Ok(())
    }

    async fn statement(&mut self, sql: &str) -> Result<(), QueryError> {
        let start = Instant::now();
        let df = self.cat.sql_frame(sql).await?;
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await?;
        let mut out = std::io::stdout().lock();
        trawl_query::format::write(&batches, &schema, self.format, &mut out)?;
        let _ = out.flush();
        if self.timing {
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            eprintln!(
                "{rows} row{} in {:.1} ms",
                if rows == 1 { "" } else { "s" },
                start.elapsed().as_secs_f64() * 1000.0
            );
        }
        Ok(())
    }

    async fn backslash(&mut self, cmd: &str) -> Result<bool> {
        let cmd = cmd.trim().trim_end_matches(';').trim();
        let (name, arg) = cmd.split_once(char::is_whitespace).map_or((cmd, ""), |(n, a)| (n, a.trim()));
        match name {
            "q" | "quit" => return Ok(false),
            "d" => self.describe(arg).await?,
            "timing" => {
                self.timing = match arg {
                    "on" => true,
                    "off" => false,
                    _ => !self.timing,
                };
                eprintln!("timing is {}", if self.timing { "on" } else { "off" });
            }
            "format" => {
                self.format = arg.parse().map_err(|e: String| anyhow::anyhow!("\\format: {e}"))?;
            }
            "kfl" => {
                let (table, expr) = match arg.split_once(char::is_whitespace) {
                    Some(("flows", rest)) => (Table::Flows, rest),
                    Some(("calls", rest)) => (Table::Calls, rest),
                    _ => (Table::Calls, arg),
                };
                let c = self.cat.compile_kfl(table, expr).await?;
                for n in &c.notes {
                    eprintln!("note: {n}");
                }
                match c.expr {
                    Some(e) => println!("SELECT * FROM {} WHERE {e}", Catalog::kfl_table(table)),
                    None => println!("SELECT * FROM {}", Catalog::kfl_table(table)),
                }
            }
            "?" | "h" | "help" => eprintln!("{HELP}"),
            other => anyhow::bail!("unknown command \\{other}: try \\?"),
        }
        Ok(true)
    }

    async fn describe(&self, table: &str) -> Result<()> {
        let tables = self.cat.describe().await?;
        if table.is_empty() {
            println!("{:<14} {:<6} columns", "name", "kind");
            for t in &tables {
                println!("{:<14} {:<6} {}", t.name, t.kind, t.columns.len());
            }
            return Ok(());
        }
        let t = tables.iter().find(|t| t.name == table).ok_or_else(|| {
            anyhow::anyhow!(
                "\\d: no table named {table:?}; tables: {}",
                tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
            )
        })?;
        println!("{} ({})", t.name, t.kind);
        for (name, ty, nullable) in &t.columns {
            println!("  {name:<26} {ty}{}", if *nullable { "" } else { " not null" });
        }
        Ok(())
    }

    async fn interactive(&mut self) -> Result<()> {
        self.timing = true;
        let mut words: Vec<String> = KEYWORDS.iter().map(|s| s.to_string()).collect();
        for t in self.cat.describe().await? {
            words.push(t.name.clone());
            words.extend(t.columns.iter().map(|c| c.0.clone()));
        }
        words.sort();
        words.dedup();
        let config = rustyline::Config::builder().auto_add_history(false).max_history_size(10_000)?.build();
        let mut ed: rustyline::Editor<SqlHelper, rustyline::history::FileHistory> =
            rustyline::Editor::with_config(config)?;
        ed.set_helper(Some(SqlHelper { words }));
        let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".trawl_sql_history"));
        if let Some(h) = &history {
            let _ = ed.load_history(h);
        }
        let names: Vec<&str> = self.cat.snapshots.iter().map(|s| s.name.as_str()).collect();
        eprintln!("trawl sql on {} (read-only). End statements with `;`. \\? for help, \\q to quit.", names.join(", "));
        loop {
            match ed.readline("trawl> ") {
                Ok(line) => {
                    let text = line.trim();
                    if text.is_empty() {
                        continue;
                    }
                    let _ = ed.add_history_entry(text);
                    // A paste may hold several statements and commands.
                    let mut quit = false;
                    for stmt in split_statements(text) {
                        let keep = if let Some(cmd) = stmt.strip_prefix('\\') {
                            self.backslash(cmd).await
                        } else {
                            self.statement(&stmt).await.map(|_| true).map_err(Into::into)
                        };
                        match keep {
                            Ok(true) => {}
                            Ok(false) => quit = true,
                            Err(e) => eprintln!("error: {e:#}"),
                        }
                        if quit {
                            break;
                        }
                    }
                    if quit {
                        break;
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(rustyline::error::ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(h) = &history {
            let _ = ed.save_history(h);
        }
        Ok(())
    }
}

const HELP: &str = "\
  SQL ends with `;` and may span lines. Tables: api_calls, flows, parse_issues;
  views: calls, http, tcp, udp, icmp. Functions beyond DataFusion's:
  cidr_match(ip, cidr), map_get(map, key, default), path_template(path),
  endpoint(method, path).
  \\d              list tables and views
  \\d NAME         columns of a table or view
  \\kfl [flows] F  show the SQL a KFL filter compiles to
  \\format FMT     table, json, ndjson or csv
  \\timing         toggle timing
  \\q              quit";

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "LIMIT",
    "HAVING",
    "JOIN",
    "LEFT",
    "ON",
    "AS",
    "AND",
    "OR",
    "NOT",
    "COUNT",
    "DISTINCT",
    "WITH",
    "EXPLAIN",
    "DESC",
    "ASC",
    "approx_percentile_cont",
    "median",
    "avg",
    "sum",
    "min",
    "max",
    "date_trunc",
    "cidr_match",
    "map_get",
    "path_template",
];

/// Statements of a script: split on `;` outside quotes and comments;
/// backslash commands end at the end of their line.
fn split_statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            cur.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                cur.push(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                cur.push('\n');
            }
            '\\' if cur.trim().is_empty() => {
                let mut line = String::from("\\");
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                    line.push(c);
                }
                out.push(line.trim().to_string());
                cur.clear();
            }
            ';' => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

struct SqlHelper {
    words: Vec<String>,
}

impl Completer for SqlHelper {
    type Candidate = Pair;
    fn complete(&self, line: &str, pos: usize, _: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos].rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
        let prefix = &line[start..pos];
        if prefix.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let lower = prefix.to_ascii_lowercase();
        let pairs = self
            .words
            .iter()
            .filter(|w| w.to_ascii_lowercase().starts_with(&lower))
            .map(|w| Pair { display: w.clone(), replacement: w.clone() })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {
    fn highlight<'l>(&self, line: &'l str, _: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Validator for SqlHelper {
    /// A statement is complete at `;`; a backslash command at the end of its line.
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input().trim();
        if input.is_empty() || input.starts_with('\\') || input.ends_with(';') {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Helper for SqlHelper {}

#[cfg(test)]
mod tests {
    use super::split_statements;

    #[test]
    fn statements_split_outside_quotes() {
        assert_eq!(
            split_statements("select ';' ; -- note; here\nselect 2;\n\\d calls\nselect 3"),
            vec!["select ';'", "select 2", "\\d calls", "select 3"]
        );
    }
}
