//! Typing and lowering of a KFL2 AST into a DataFusion logical expression.
//!
//! Every node is typed (CEL's static types, restricted to what trawl's
//! tables hold) before it is lowered, so a mismatch is reported against the
//! filter text instead of surfacing as a DataFusion planning error.
//!
//! Semantics taken from KFL2:
//! - absent values read as the type's default (`""`, `0`, `false`, `[]`,
//!   `{}`): nullable columns are wrapped in `coalesce`;
//! - protocol scoping: a predicate over a protocol's variable only matches
//!   entries of that protocol (`status_code == 0` is `http && status_code == 0`),
//!   and such a variable on its own tests existence (`status_code`);
//! - `now()` is the end of the snapshot's data, not the wall clock.
//!
//! One file: typing and lowering are one pass over the AST, whose rules
//! (scoping, coercions, null semantics) refer to each other.

use std::ops::Not;
use std::sync::Arc;
use trawl_schemas::time::{days_from_civil, parse_duration, parse_rfc3339};

use datafusion::arrow::datatypes::{DataType, Field, IntervalMonthDayNano, TimeUnit};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::functions::expr_fn as f;
use datafusion::functions_nested::expr_fn as nf;
use datafusion::logical_expr::expr::LambdaVariable;
use datafusion::logical_expr::{Expr, ExprSchemable, cast, lambda, lit, try_cast, when};

use super::error::{KflError, Span};
use super::fields::{self, DECODED, Flag, Lookup, Src, Table, VarDef, VarTy};
use super::legacy;
use super::syntax::{BinOp, Kind, Legacy, Lit, Node, UnOp, parse};
use crate::udf;

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 16 * 1024;

/// What a filter is compiled against.
pub struct Env<'a> {
    pub table: Table,
    /// Schema of the table or view the filter will run on.
    pub schema: &'a DFSchema,
    /// `now()`: the capture time of the snapshot's last packet, in ns.
    pub now_ns: Option<i64>,
}

/// A compiled filter.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// `None` for an empty filter (everything matches).
    pub expr: Option<Expr>,
    /// Rewrites applied (legacy spellings), for the user to see.
    pub notes: Vec<String>,
}

/// Compiles `src` for `env`. Errors carry the filter text, so their
/// `Display` shows a caret under the offending part.
pub fn compile(src: &str, env: &Env) -> Result<Compiled, KflError> {
    compile_inner(src, env).map_err(|e| e.with_source(src))
}

fn compile_inner(src: &str, env: &Env) -> Result<Compiled, KflError> {
    if src.len() > MAX_FILTER_LEN {
        return Err(KflError::new(
            Span::new(0, 0),
            format!("filter is {} bytes long; the limit is {MAX_FILTER_LEN}", src.len()),
        ));
    }
    let mut legacy = Legacy::default();
    let Some(ast) = parse(src, &mut legacy)? else {
        return Ok(Compiled { expr: None, notes: legacy.notes });
    };
    let mut c = Compiler { env, notes: legacy.notes, lambdas: Vec::new(), depth: 0 };
    let v = c.node(&ast)?;
    let e = c.condition(v)?;
    // Belt and braces: the expression must plan against the table.
    if let Err(err) = e.get_type(env.schema) {
        return Err(KflError::new(ast.span, format!("internal error planning the filter: {err}")));
    }
    Ok(Compiled { expr: Some(e), notes: c.notes })
}

/// KFL's static types.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Bool,
    Int,
    Double,
    Str,
    Bytes,
    Timestamp,
    Duration,
    List(Box<Ty>),
    Map,
    Null,
}

impl Ty {
    fn name(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Double => "double".into(),
            Ty::Str => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Timestamp => "timestamp".into(),
            Ty::Duration => "duration".into(),
            Ty::List(t) => format!("list({})", t.name()),
            Ty::Map => "map(string, string)".into(),
            Ty::Null => "null".into(),
        }
    }

    fn of(v: VarTy) -> Ty {
        match v {
            VarTy::Bool => Ty::Bool,
            VarTy::Int => Ty::Int,
            VarTy::Double => Ty::Double,
            VarTy::Str => Ty::Str,
            VarTy::Bytes => Ty::Bytes,
            VarTy::Timestamp => Ty::Timestamp,
            VarTy::StrList => Ty::List(Box::new(Ty::Str)),
            VarTy::StrMap => Ty::Map,
        }
    }

    fn numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Double)
    }
}

/// A typed, lowered sub-expression.
#[derive(Debug, Clone)]
struct Val {
    e: Expr,
    ty: Ty,
    span: Span,
    /// Protocol flags this value is scoped to (see module docs).
    scope: Vec<&'static str>,
    /// How to name it in messages (`status_code`, `"200"`).
    label: String,
    /// The literal, when the value is one.
    lit: Option<Lit>,
    /// The variable, when the value is one.
    var: Option<&'static VarDef>,
    /// Map keys are lower-case in the data (HTTP header names).
    lower_keys: bool,
}

impl Val {
    fn new(e: Expr, ty: Ty, span: Span, label: impl Into<String>) -> Val {
        Val { e, ty, span, scope: Vec::new(), label: label.into(), lit: None, var: None, lower_keys: false }
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.label, self.ty.name())
    }
}

struct Compiler<'a> {
    env: &'a Env<'a>,
    notes: Vec<String>,
    /// Variables bound by `.exists(x, ...)` and friends, innermost last.
    lambdas: Vec<(String, Ty)>,
    depth: usize,
}

fn column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

fn label_of(src: &str) -> String {
    format!("`{src}`")
}

impl Compiler<'_> {
    fn node(&mut self, n: &Node) -> Result<Val, KflError> {
        self.depth += 1;
        let out = self.node_inner(n);
        self.depth -= 1;
        out
    }

    fn node_inner(&mut self, n: &Node) -> Result<Val, KflError> {
        match &n.kind {
            Kind::Lit(l) => self.literal(l, n.span),
            Kind::Ident(_) | Kind::Select(..) => self.name(n),
            Kind::Index(base, idx) => {
                let b = self.node(base)?;
                let i = self.node(idx)?;
                self.index(b, i, n.span)
            }
            Kind::List(items) => {
                Err(KflError::new(n.span, "a list literal can only be used on the right of `in` (`x in [a, b]`)").hint(
                    if items.is_empty() {
                        "use size(x) == 0 to test for an empty list"
                    } else {
                        "write `value in [a, b, c]`"
                    },
                ))
            }
            Kind::Unary(UnOp::Not, x) => {
                let v = self.node(x)?;
                let e = self.condition(v)?;
                Ok(Val::new(e.not(), Ty::Bool, n.span, "a condition"))
            }
            Kind::Unary(UnOp::Neg, x) => {
                let v = self.node(x)?;
                if !v.ty.numeric() {
                    return Err(KflError::new(n.span, format!("cannot negate {}", v.describe())));
                }
                let mut out = v.clone();
                out.e = Expr::Negative(Box::new(v.e));
                out.span = n.span;
                out.lit = None;
                Ok(out)
            }
            Kind::Binary(op, a, b) => self.binary(*op, a, b, n.span),
            Kind::Ternary(c, a, b) => {
                let cv = self.node(c)?;
                let cond = self.condition(cv)?;
                let (a, b) = (self.node(a)?, self.node(b)?);
                let (a, b) = self.unify(a, b, n.span, "the two branches of `?:`")?;
                let e = when(cond, a.e).otherwise(b.e).map_err(|e| KflError::new(n.span, e.to_string()))?;
                let mut v = Val::new(e, a.ty, n.span, "a conditional");
                v.scope = merge(&a.scope, &b.scope);
                Ok(v)
            }
            Kind::Call { target, name, args } => self.call(target.as_deref(), name, args, n.span),
        }
    }

    fn literal(&mut self, l: &Lit, span: Span) -> Result<Val, KflError> {
        let (e, ty, label) = match l {
            Lit::Bool(b) => (lit(*b), Ty::Bool, b.to_string()),
            Lit::Int(i) => (lit(*i), Ty::Int, i.to_string()),
            Lit::UInt(u) => {
                let i = i64::try_from(*u)
                    .map_err(|_| KflError::new(span, format!("{u}u does not fit in a signed 64-bit int")))?;
                (lit(i), Ty::Int, format!("{u}u"))
            }
            Lit::Double(d) => (lit(*d), Ty::Double, d.to_string()),
            Lit::Str { value, .. } => (lit(value.clone()), Ty::Str, format!("{value:?}")),
            Lit::Bytes(b) => (lit(ScalarValue::Binary(Some(b.clone()))), Ty::Bytes, "a bytes literal".into()),
            Lit::Null => (lit(ScalarValue::Null), Ty::Null, "null".into()),
        };
        let mut v = Val::new(e, ty, span, label);
        v.lit = Some(l.clone());
        Ok(v)
    }

    /// An identifier or a dotted chain: a variable, a lambda variable, a
    /// legacy alias, a column, or a variable followed by map keys
    /// (`node.name`, `request.headers.host`).
    fn name(&mut self, n: &Node) -> Result<Val, KflError> {
        let Some(dotted) = n.dotted() else {
            // `(expr).field`
            let Kind::Select(base, field) = &n.kind else {
                return Err(KflError::new(n.span, "expected a name"));
            };
            let b = self.node(base)?;
            return self.select(b, field, n.span);
        };
        let parts: Vec<&str> = dotted.split('.').collect();
        for take in (1..=parts.len()).rev() {
            let prefix = parts[..take].join(".");
            if let Some(mut v) = self.resolve(&prefix, n.span)? {
                for key in &parts[take..] {
                    v = self.select(v, key, n.span)?;
                }
                return Ok(v);
            }
        }
        Err(self.unknown(&dotted, n.span))
    }

    fn select(&mut self, base: Val, field: &str, span: Span) -> Result<Val, KflError> {
        if base.ty != Ty::Map {
            return Err(KflError::new(span, format!("{} has no field `{field}`", base.describe())));
        }
        let key = Val::new(lit(field), Ty::Str, span, format!("{field:?}"));
        self.index(base, key, span)
    }

    /// Resolves one name; `Ok(None)` if nothing has that name.
    fn resolve(&mut self, name: &str, span: Span) -> Result<Option<Val>, KflError> {
        if let Some((_, ty)) = self.lambdas.iter().rev().find(|(n, _)| n == name) {
            let field = Arc::new(Field::new(name, to_arrow(ty), true));
            let e = Expr::LambdaVariable(LambdaVariable::new(name.to_string(), Some(field)));
            return Ok(Some(Val::new(e, ty.clone(), span, label_of(name))));
        }
        match fields::lookup(name) {
            Some(Lookup::Var(def)) => return self.var(def, span).map(Some),
            Some(Lookup::PendingFlag(disp)) => {
                return Err(KflError::new(
                    span,
                    format!("`{name}`: trawl does not decode {disp} yet, so this flag cannot match anything"),
                )
                .hint(format!("protocols decoded today: {}", DECODED.join(", "))));
            }
            Some(Lookup::PendingVar(flag, disp)) => {
                return Err(KflError::new(
                    span,
                    format!("`{name}` is a {disp} field (`{flag}`), and trawl does not decode {disp} yet"),
                )
                .hint(format!("protocols decoded today: {}", DECODED.join(", "))));
            }
            Some(Lookup::Later(why)) => return Err(KflError::new(span, format!("`{name}` is not available: {why}"))),
            None => {}
        }
        if let Some(to) = legacy::alias(name) {
            self.note(format!("legacy field `{name}` rewritten to `{to}`"));
            let mut l = Legacy::default();
            let ast = parse(to, &mut l)
                .map_err(|e| KflError::new(span, format!("internal error in alias `{name}`: {}", e.message)))?;
            let Some(ast) = ast else { return Ok(None) };
            let mut v = self.node(&relocate(ast, span))?;
            v.label = label_of(name);
            return Ok(Some(v));
        }
        if let Ok(field) = self.env.schema.field_with_unqualified_name(name) {
            return self.raw_column(name, field.data_type(), field.is_nullable(), span).map(Some);
        }
        Ok(None)
    }

    fn note(&mut self, s: String) {
        if !self.notes.contains(&s) {
            self.notes.push(s);
        }
    }

    fn unknown(&self, name: &str, span: Span) -> KflError {
        let columns = self.env.schema.fields().iter().map(|f| f.name().to_string()).collect::<Vec<_>>();
        let candidates = fields::all_names()
            .map(str::to_string)
            .chain(legacy::ALIASES.iter().map(|(n, _)| n.to_string()))
            .chain(columns);
        let near = nearest(name, candidates);
        let err = KflError::new(span, format!("unknown field `{name}`"));
        match near.as_slice() {
            [] => err.hint("see docs/kfl.md for the variables of each table"),
            [one] => err.hint(format!("did you mean `{one}`?")),
            many => err.hint(format!(
                "did you mean one of {}?",
                many.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// A column read directly by its name in the snapshot (trawl extension:
    /// every column of docs/schema.md can be used in a filter).
    fn raw_column(&mut self, name: &str, dt: &DataType, nullable: bool, span: Span) -> Result<Val, KflError> {
        let ty = match dt {
            DataType::Boolean => Ty::Bool,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Ty::Int,
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => Ty::Int,
            DataType::Float32 | DataType::Float64 => Ty::Double,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ty::Str,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Ty::Bytes,
            DataType::Timestamp(_, _) => Ty::Timestamp,
            DataType::List(f) if matches!(f.data_type(), DataType::Utf8) => Ty::List(Box::new(Ty::Str)),
            DataType::Map(_, _) => Ty::Map,
            other => {
                return Err(KflError::new(span, format!("column `{name}` has type {other}, which filters cannot use")));
            }
        };
        let e = self.typed_column(name, &ty, dt, nullable);
        let mut v = Val::new(e, ty, span, label_of(name));
        v.lower_keys = name.ends_with("_headers");
        Ok(v)
    }

    /// A column converted to its KFL type, nulls read as the default.
    fn typed_column(&self, name: &str, ty: &Ty, dt: &DataType, nullable: bool) -> Expr {
        let mut e = column(name);
        match ty {
            // Text columns hold numbers of some protocols (MySQL's error
            // numbers): those that are not read as null.
            Ty::Int if *dt == DataType::Utf8 => e = try_cast(e, DataType::Int64),
            Ty::Int if *dt != DataType::Int64 => e = cast(e, DataType::Int64),
            Ty::Double if *dt != DataType::Float64 => e = cast(e, DataType::Float64),
            Ty::Timestamp if *dt != DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())) => {
                e = cast(e, DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())))
            }
            _ => {}
        }
        if !nullable {
            return e;
        }
        let default = match ty {
            Ty::Bool => lit(false),
            Ty::Int => lit(0i64),
            Ty::Double => lit(0.0f64),
            Ty::Str => lit(""),
            Ty::Bytes => lit(ScalarValue::Binary(Some(Vec::new()))),
            Ty::List(_) => lit(ScalarValue::List(ScalarValue::new_list_nullable(&[], &DataType::Utf8))),
            // Timestamps, maps: no default that means anything; keep null
            // (comparisons with null are false).
            _ => return e,
        };
        f::coalesce(vec![e, default])
    }

    fn need_column(&self, name: &str, var: &str, span: Span) -> Result<(DataType, bool), KflError> {
        match self.env.schema.field_with_unqualified_name(name) {
            Ok(fld) => Ok((fld.data_type().clone(), fld.is_nullable())),
            Err(_) => Err(KflError::new(
                span,
                format!(
                    "`{var}` needs column `{name}`, which this snapshot's {} table does not have",
                    self.env.table.name()
                ),
            )
            .hint("the snapshot may come from an older trawl; analyse the capture again")),
        }
    }

    fn var(&mut self, def: &'static VarDef, span: Span) -> Result<Val, KflError> {
        let ty = Ty::of(def.ty);
        let e = match def.src(self.env.table) {
            Src::Col(c) => {
                let (dt, nullable) = self.need_column(c, def.name, span)?;
                self.typed_column(c, &ty, &dt, nullable)
            }
            Src::Upper(c) => {
                self.need_column(c, def.name, span)?;
                f::upper(column(c))
            }
            Src::PerSecond(c) => {
                self.need_column(c, def.name, span)?;
                self.need_column("duration_us", def.name, span)?;
                // A flow with a single instant counts as lasting one second.
                let dur = when(column("duration_us").gt(lit(0i64)), cast(column("duration_us"), DataType::Float64))
                    .otherwise(lit(1_000_000.0f64))
                    .map_err(|e| KflError::new(span, e.to_string()))?;
                cast(column(c), DataType::Float64) * lit(1_000_000.0f64) / dur
            }
            Src::Text(c) => {
                self.need_column(c, def.name, span)?;
                udf::body_text().call(vec![column(c)])
            }
            Src::Cookies(c, header) => {
                self.need_column(c, def.name, span)?;
                let h = map_value(column(c), lit(header));
                udf::cookies().call(vec![h, lit(header == "set-cookie")])
            }
            Src::Kube(cols) => {
                for c in cols {
                    self.kube_column(c, def.name, span)?;
                }
                if def.ty == VarTy::StrMap {
                    // Maps (labels, annotations) have no fallback: the pod's own.
                    f::coalesce(cols.iter().map(|c| column(c)).collect())
                } else {
                    // An empty string is as unknown as a null: fall through to the next.
                    let mut parts: Vec<Expr> = cols.iter().map(|c| f::nullif(column(c), lit(""))).collect();
                    parts.push(lit(""));
                    f::coalesce(parts)
                }
            }
            Src::Resolution(c) => {
                self.kube_column(c, def.name, span)?;
                when(column(c).in_list(vec![lit("pod"), lit("service"), lit("node")], false), lit(""))
                    .otherwise(f::coalesce(vec![column(c), lit("")]))
                    .map_err(|e| KflError::new(span, e.to_string()))?
            }
            Src::KubeList(cols) => {
                let mut parts = Vec::new();
                for c in cols {
                    self.kube_column(c, def.name, span)?;
                    parts.push(f::coalesce(vec![column(c), lit("")]));
                }
                nf::array_distinct(nf::array_remove_all(nf::make_array(parts), lit("")))
            }
            Src::Flag(fl) => self.flag(fl, def.name, span)?,
            Src::Negated(c) => {
                self.need_column(c, def.name, span)?;
                f::coalesce(vec![column(c), lit(true)]).not()
            }
            Src::Positive(c) => {
                self.need_column(c, def.name, span)?;
                f::coalesce(vec![column(c), lit(0i64)]).gt(lit(0i64))
            }
            Src::Sum(cols) => {
                let mut sum: Option<Expr> = None;
                for c in cols {
                    self.need_column(c, def.name, span)?;
                    let v = f::coalesce(vec![cast(column(c), DataType::Int64), lit(0i64)]);
                    sum = Some(match sum {
                        None => v,
                        Some(s) => s + v,
                    });
                }
                sum.unwrap_or(lit(0i64))
            }
            Src::Const(b) => lit(b),
            Src::Elsewhere(t) => {
                return Err(KflError::new(
                    span,
                    format!("`{}` is a field of the {} table, not of {}", def.name, t.name(), self.env.table.name()),
                )
                .hint(format!(
                    "run the filter on {} (--table {} on the command line)",
                    t.name(),
                    t.name()
                )));
            }
        };
        let mut v = Val::new(e, ty, span, label_of(def.name));
        v.var = Some(def);
        v.lower_keys = def.name.ends_with(".headers");
        if let Some(p) = def.scope {
            if v.ty == Ty::Bool {
                // Boolean protocol variables keep their value, within their protocol.
                v.e = self.scope_pred(p, span)?.and(v.e);
            } else {
                v.scope.push(p);
            }
        }
        Ok(v)
    }

    fn kube_column(&self, c: &str, var: &str, span: Span) -> Result<(), KflError> {
        match self.env.schema.field_with_unqualified_name(c) {
            Ok(_) => Ok(()),
            Err(_) => Err(KflError::new(span, format!("`{var}` needs the Kubernetes columns, and this snapshot predates them"))
                .hint("analyse the capture again (with its sidecars: --k8s, docs/kubernetes.md); meanwhile filter on src.ip / dst.ip")),
        }
    }

    fn flag(&self, fl: Flag, name: &str, span: Span) -> Result<Expr, KflError> {
        Ok(match fl {
            Flag::Protocol(list) => {
                self.need_column("protocol", name, span)?;
                match list {
                    [one] => column("protocol").eq(lit(*one)),
                    many => column("protocol").in_list(many.iter().map(|p| lit(*p)).collect(), false),
                }
            }
            Flag::Detected(p) => {
                self.need_column("l7_protocols", name, span)?;
                nf::array_has(column("l7_protocols"), lit(p))
            }
            Flag::ProtocolOver(p, versions) => {
                self.need_column("protocol", name, span)?;
                self.need_column("http_version", name, span)?;
                column("protocol")
                    .eq(lit(p))
                    .and(column("http_version").in_list(versions.iter().map(|v| lit(*v)).collect(), false))
            }
        })
    }

    /// The predicate of protocol flag `p` on this table.
    fn scope_pred(&self, p: &str, span: Span) -> Result<Expr, KflError> {
        match fields::lookup(p) {
            Some(Lookup::Var(def)) => match def.src(self.env.table) {
                Src::Flag(fl) => self.flag(fl, p, span),
                Src::Const(b) => Ok(lit(b)),
                _ => Err(KflError::new(span, format!("internal error: `{p}` is not a protocol flag"))),
            },
            _ => match fields::scope_flag(p) {
                Some(fl) => self.flag(fl, p, span),
                None => Err(KflError::new(span, format!("internal error: unknown protocol flag `{p}`"))),
            },
        }
    }

    /// Wraps a boolean built from operands in their protocol scopes.
    fn scoped(&self, e: Expr, scopes: &[&'static str], span: Span) -> Result<Expr, KflError> {
        let mut out = e;
        for p in scopes.iter().rev() {
            out = self.scope_pred(p, span)?.and(out);
        }
        Ok(out)
    }

    fn boolean(&self, e: Expr, scopes: &[&'static str], span: Span, label: &str) -> Result<Val, KflError> {
        Ok(Val::new(self.scoped(e, scopes, span)?, Ty::Bool, span, label))
    }

    /// A value used as a condition: a bool, or a protocol variable on its
    /// own (existence: `status_code` = every HTTP entry).
    fn condition(&self, v: Val) -> Result<Expr, KflError> {
        if v.ty == Ty::Bool {
            return self.scoped(v.e, &v.scope, v.span);
        }
        if v.var.is_some() && !v.scope.is_empty() {
            return self.scoped(lit(true), &v.scope, v.span);
        }
        let hint = match v.ty {
            Ty::Str => "compare it: `x == \"value\"`, `x != \"\"`, `x.contains(\"...\")`",
            Ty::Int | Ty::Double => "compare it: `x > 0`",
            Ty::List(_) | Ty::Map => "test it: `size(x) > 0` or `\"value\" in x`",
            _ => "conditions are comparisons, flags and `&&`, `||`, `!`",
        };
        Err(KflError::new(v.span, format!("expected a condition (bool), found {}", v.describe())).hint(hint))
    }

    fn binary(&mut self, op: BinOp, a: &Node, b: &Node, span: Span) -> Result<Val, KflError> {
        // `x in [a, b]` with a literal list.
        if op == BinOp::In
            && let Kind::List(items) = &b.kind
        {
            let lhs = self.node(a)?;
            let mut list = Vec::new();
            for item in items {
                let iv = self.node(item)?;
                let (l, r) = self.unify(lhs.clone(), iv, span, "`in`")?;
                self.check_values(&l, &r)?;
                list.push(r.e);
            }
            let lhs_e = match &lhs.ty {
                Ty::Int if items.iter().any(|i| matches!(i.kind, Kind::Lit(Lit::Double(_)))) => {
                    cast(lhs.e.clone(), DataType::Float64)
                }
                _ => lhs.e.clone(),
            };
            return self.boolean(lhs_e.in_list(list, false), &lhs.scope, span, "an `in` test");
        }
        let (l, r) = (self.node(a)?, self.node(b)?);
        match op {
            BinOp::And | BinOp::Or => {
                let (le, re) = (self.condition(l)?, self.condition(r)?);
                let e = if op == BinOp::And { le.and(re) } else { le.or(re) };
                Ok(Val::new(e, Ty::Bool, span, "a condition"))
            }
            BinOp::Eq | BinOp::Ne => {
                // KFL v1: `response.status == r"4.*"` matched a regular expression.
                if let Some(Lit::Str { value, raw: true }) = &r.lit
                    && l.ty != Ty::Str
                    && l.ty.numeric()
                {
                    let re = format!("^(?:{value})$");
                    check_regex(&re, r.span)?;
                    self.note(format!("legacy regex literal r\"{value}\" matched against the text of {}", l.label));
                    let m = f::regexp_like(cast(l.e.clone(), DataType::Utf8), lit(re), None);
                    let m = if op == BinOp::Eq { m } else { m.not() };
                    return self.boolean(m, &l.scope, span, "a match");
                }
                let scopes = merge(&l.scope, &r.scope);
                let (l, r) = self.unify(l, r, span, op.symbol())?;
                self.check_values(&l, &r)?;
                self.check_values(&r, &l)?;
                let e = if op == BinOp::Eq { l.e.eq(r.e) } else { l.e.not_eq(r.e) };
                self.boolean(e, &scopes, span, "a comparison")
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let scopes = merge(&l.scope, &r.scope);
                let (l, r) = self.unify(l, r, span, op.symbol())?;
                if matches!(l.ty, Ty::Bool | Ty::List(_) | Ty::Map | Ty::Bytes | Ty::Null) {
                    return Err(KflError::new(
                        span,
                        format!("`{}` cannot order values of type {}", op.symbol(), l.ty.name()),
                    ));
                }
                let e = match op {
                    BinOp::Lt => l.e.lt(r.e),
                    BinOp::Le => l.e.lt_eq(r.e),
                    BinOp::Gt => l.e.gt(r.e),
                    _ => l.e.gt_eq(r.e),
                };
                self.boolean(e, &scopes, span, "a comparison")
            }
            BinOp::In => {
                let scopes = merge(&l.scope, &r.scope);
                match &r.ty {
                    Ty::List(elem) => {
                        let elem = Val::new(
                            lit(ScalarValue::Null),
                            (**elem).clone(),
                            r.span,
                            format!("an element of {}", r.label),
                        );
                        let (l2, _) = self.unify(l.clone(), elem, span, "`in`")?;
                        self.boolean(nf::array_has(r.e, l2.e), &scopes, span, "an `in` test")
                    }
                    Ty::Map => {
                        if l.ty != Ty::Str {
                            return Err(KflError::new(
                                span,
                                format!("map keys are strings; {} cannot be one", l.describe()),
                            ));
                        }
                        let key = if r.lower_keys { lower_literal(&l) } else { l.e };
                        self.boolean(nf::array_has(nf::map_keys(r.e), key), &scopes, span, "an `in` test")
                    }
                    Ty::Str => Err(KflError::new(
                        span,
                        format!("`in` needs a list or a map on its right; {} is a string", r.label),
                    )
                    .hint(format!(
                        "for a substring test write {}.contains({})",
                        r.label.trim_matches('`'),
                        l.label
                    ))),
                    _ => Err(KflError::new(
                        span,
                        format!("`in` needs a list or a map on its right, found {}", r.describe()),
                    )),
                }
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => self.arith(op, l, r, span),
        }
    }

    fn arith(&mut self, op: BinOp, l: Val, r: Val, span: Span) -> Result<Val, KflError> {
        let scopes = merge(&l.scope, &r.scope);
        let bad = |l: &Val, r: &Val| {
            KflError::new(span, format!("`{}` is not defined for {} and {}", op.symbol(), l.describe(), r.describe()))
        };
        let (e, ty) = match (&l.ty, &r.ty, op) {
            (Ty::Timestamp, Ty::Duration, BinOp::Add | BinOp::Sub)
            | (Ty::Duration, Ty::Duration, BinOp::Add | BinOp::Sub) => {
                let e = if op == BinOp::Add { l.e.clone() + r.e.clone() } else { l.e.clone() - r.e.clone() };
                (e, l.ty.clone())
            }
            (Ty::Duration, Ty::Timestamp, BinOp::Add) => (r.e.clone() + l.e.clone(), Ty::Timestamp),
            (Ty::Str, Ty::Str, BinOp::Add) => (f::concat(vec![l.e.clone(), r.e.clone()]), Ty::Str),
            (a, b, _) if a.numeric() && b.numeric() => {
                let (l2, r2) = self.unify(l.clone(), r.clone(), span, op.symbol())?;
                let e = match op {
                    BinOp::Add => l2.e + r2.e,
                    BinOp::Sub => l2.e - r2.e,
                    BinOp::Mul => l2.e * r2.e,
                    BinOp::Div => l2.e / r2.e,
                    _ => l2.e % r2.e,
                };
                (e, l2.ty)
            }
            _ => return Err(bad(&l, &r)),
        };
        let mut v = Val::new(e, ty, span, format!("{} {} {}", l.label, op.symbol(), r.label));
        v.scope = scopes;
        Ok(v)
    }

    /// Brings two operands to one type (int widens to double), or explains
    /// why they cannot be compared.
    fn unify(&self, l: Val, r: Val, span: Span, what: &str) -> Result<(Val, Val), KflError> {
        if l.ty == r.ty || l.ty == Ty::Null || r.ty == Ty::Null {
            return Ok((l, r));
        }
        match (&l.ty, &r.ty) {
            (Ty::Int, Ty::Double) => {
                let mut l = l;
                l.e = cast(l.e, DataType::Float64);
                l.ty = Ty::Double;
                Ok((l, r))
            }
            (Ty::Double, Ty::Int) => {
                let mut r = r;
                r.e = cast(r.e, DataType::Float64);
                r.ty = Ty::Double;
                Ok((l, r))
            }
            _ => {
                let err =
                    KflError::new(span, format!("cannot use {what} between {} and {}", l.describe(), r.describe()));
                Err(match mismatch_hint(&l, &r).or_else(|| mismatch_hint(&r, &l)) {
                    Some(h) => err.hint(h),
                    None => err,
                })
            }
        }
    }

    /// Compares a variable with a closed set of values against a literal.
    fn check_values(&self, var: &Val, other: &Val) -> Result<(), KflError> {
        let (Some(def), Some(Lit::Str { value, .. })) = (var.var, &other.lit) else { return Ok(()) };
        if def.name == "protocol" {
            return self.check_protocol(value, other.span);
        }
        if def.values.is_empty() || def.values.contains(&value.as_str()) {
            return Ok(());
        }
        let err = KflError::new(
            other.span,
            format!("`{}` is never {value:?}: its values are {}", def.name, quoted(def.values)),
        );
        Err(match nearest(value, def.values.iter().map(|s| s.to_string())).first() {
            Some(n) => err.hint(format!("did you mean {n:?}?")),
            None => err,
        })
    }

    fn check_protocol(&self, value: &str, span: Span) -> Result<(), KflError> {
        let known: Vec<String> = match self.env.table {
            Table::Calls => DECODED.iter().map(|p| p.to_ascii_uppercase()).collect(),
            Table::Flows => ["TCP", "UDP", "ICMP", "ICMPV6"].iter().map(|s| s.to_string()).collect(),
        };
        if known.iter().any(|k| k == value) {
            return Ok(());
        }
        if self.env.table == Table::Flows && value.strip_prefix("IP-").is_some_and(|n| n.parse::<u8>().is_ok()) {
            return Ok(());
        }
        if known.iter().any(|k| k.eq_ignore_ascii_case(value)) {
            return Err(KflError::new(span, format!("protocol names are upper-case: {value:?} never matches"))
                .hint(format!("write {:?}", value.to_ascii_uppercase())));
        }
        if let Some(disp) = fields::pending_protocol(value) {
            return Err(KflError::new(
                span,
                format!("trawl does not decode {disp} yet, so `protocol == {value:?}` cannot match anything"),
            )
            .hint(format!("protocols decoded today: {}", DECODED.join(", "))));
        }
        Err(KflError::new(
            span,
            format!("no {} entry has protocol {value:?}: the values are {}", self.env.table.name(), quoted(&known)),
        ))
    }

    fn index(&mut self, base: Val, idx: Val, span: Span) -> Result<Val, KflError> {
        match &base.ty {
            Ty::Map => {
                if idx.ty != Ty::Str {
                    return Err(KflError::new(idx.span, format!("map keys are strings; found {}", idx.describe())));
                }
                let key = if base.lower_keys { lower_literal(&idx) } else { idx.e.clone() };
                // A missing key reads as "" (KFL2's safe access).
                let e = f::coalesce(vec![map_value(base.e, key), lit("")]);
                let mut v = Val::new(e, Ty::Str, span, format!("{}[{}]", base.label.trim_matches('`'), idx.label));
                v.scope = merge(&base.scope, &idx.scope);
                Ok(v)
            }
            Ty::List(elem) => {
                if idx.ty != Ty::Int {
                    return Err(KflError::new(idx.span, format!("list indexes are ints; found {}", idx.describe())));
                }
                // CEL indexes from 0, DataFusion from 1.
                let e = f::coalesce(vec![nf::array_element(base.e, idx.e + lit(1i64)), lit("")]);
                let mut v =
                    Val::new(e, (**elem).clone(), span, format!("{}[{}]", base.label.trim_matches('`'), idx.label));
                v.scope = base.scope;
                Ok(v)
            }
            _ => Err(KflError::new(span, format!("cannot index {}", base.describe()))),
        }
    }

    fn call(&mut self, target: Option<&Node>, name: &str, args: &[Node], span: Span) -> Result<Val, KflError> {
        let Some(target) = target else { return self.global(name, args, span) };
        // Macros bind a variable: compile the receiver, then the body.
        if matches!(name, "exists" | "all") {
            return self.macro_call(target, name, args, span);
        }
        let recv = self.node(target)?;
        let argv = args.iter().map(|a| self.node(a)).collect::<Result<Vec<_>, _>>()?;
        let arity = |n: usize| arity(&format!(".{name}"), n, argv.len(), span);
        match name {
            "contains" | "startsWith" | "endsWith" | "matches" => {
                arity(1)?;
                if recv.ty != Ty::Str {
                    let hint = match recv.ty {
                        Ty::List(_) => Some(format!("for lists write `value in {}`", recv.label.trim_matches('`'))),
                        Ty::Map => Some(format!("for maps write `\"key\" in {}`", recv.label.trim_matches('`'))),
                        _ => None,
                    };
                    let err =
                        KflError::new(span, format!("`.{name}()` works on strings; {} is not one", recv.describe()));
                    return Err(if let Some(h) = hint { err.hint(h) } else { err });
                }
                let arg = &argv[0];
                if arg.ty != Ty::Str {
                    return Err(KflError::new(
                        arg.span,
                        format!("`.{name}()` takes a string, found {}", arg.describe()),
                    ));
                }
                let e = match name {
                    "contains" => f::contains(recv.e, arg.e.clone()),
                    "startsWith" => f::starts_with(recv.e, arg.e.clone()),
                    "endsWith" => f::ends_with(recv.e, arg.e.clone()),
                    _ => {
                        if let Some(Lit::Str { value, .. }) = &arg.lit {
                            check_regex(value, arg.span)?;
                        }
                        f::regexp_like(recv.e, arg.e.clone(), None)
                    }
                };
                self.boolean(e, &merge(&recv.scope, &arg.scope), span, "a string test")
            }
            "size" => {
                arity(0)?;
                self.size(recv, span)
            }
            "lowerAscii" | "upperAscii" => {
                arity(0)?;
                if recv.ty != Ty::Str {
                    return Err(KflError::new(
                        span,
                        format!("`.{name}()` works on strings; {} is not one", recv.describe()),
                    ));
                }
                let mut v = recv.clone();
                v.e = if name == "lowerAscii" { f::lower(recv.e) } else { f::upper(recv.e) };
                v.lit = None;
                v.var = None;
                v.span = span;
                Ok(v)
            }
            _ => Err(self.unknown_function(&format!(".{name}"), span)),
        }
    }

    fn unknown_function(&self, name: &str, span: Span) -> KflError {
        const KNOWN: &[&str] = &[
            ".contains",
            ".startsWith",
            ".endsWith",
            ".matches",
            ".size",
            ".exists",
            ".all",
            ".lowerAscii",
            ".upperAscii",
            "size",
            "timestamp",
            "duration",
            "now",
            "map_get",
            "matches",
            "int",
            "double",
            "string",
            "datetime",
        ];
        let near = nearest(name, KNOWN.iter().map(|s| s.to_string()));
        let err = KflError::new(span, format!("unknown function `{name}()`"));
        match near.first() {
            Some(n) => err.hint(format!("did you mean `{n}()`?")),
            None => err.hint(format!("functions: {}", KNOWN.join(", "))),
        }
    }

    fn size(&self, v: Val, span: Span) -> Result<Val, KflError> {
        let e = match v.ty {
            Ty::Str => cast(f::character_length(v.e), DataType::Int64),
            Ty::Bytes => cast(f::octet_length(v.e), DataType::Int64),
            Ty::List(_) | Ty::Map => cast(f::coalesce(vec![nf::cardinality(v.e), lit(0u64)]), DataType::Int64),
            _ => {
                return Err(KflError::new(
                    span,
                    format!("size() takes a string, bytes, list or map; found {}", v.describe()),
                ));
            }
        };
        let mut out = Val::new(e, Ty::Int, span, format!("size({})", v.label));
        out.scope = v.scope;
        Ok(out)
    }

    fn macro_call(&mut self, target: &Node, name: &str, args: &[Node], span: Span) -> Result<Val, KflError> {
        let recv = self.node(target)?;
        let [var, body] = args else {
            return Err(KflError::new(span, format!("`.{name}(x, condition)` takes a variable name and a condition")));
        };
        let Kind::Ident(var_name) = &var.kind else {
            return Err(KflError::new(
                var.span,
                format!("the first argument of `.{name}()` must be a variable name, like `x`"),
            ));
        };
        let (list, elem) = match &recv.ty {
            Ty::List(t) => (recv.e.clone(), (**t).clone()),
            // Over a map, CEL's macros range over its keys.
            Ty::Map => (nf::map_keys(recv.e.clone()), Ty::Str),
            _ => {
                return Err(KflError::new(
                    span,
                    format!("`.{name}()` works on lists and maps; {} is neither", recv.describe()),
                ));
            }
        };
        self.lambdas.push((var_name.clone(), elem));
        let body_v = self.node(body);
        self.lambdas.pop();
        let pred = self.condition(body_v?)?;
        let e = if name == "exists" {
            nf::array_any_match(list, lambda([var_name.clone()], f::coalesce(vec![pred, lit(false)])))
        } else {
            // all(x, p) == !exists(x, !p)
            nf::array_any_match(list, lambda([var_name.clone()], f::coalesce(vec![pred, lit(false)]).not())).not()
        };
        self.boolean(e, &recv.scope, span, format!("`.{name}()`").as_str())
    }

    fn global(&mut self, name: &str, args: &[Node], span: Span) -> Result<Val, KflError> {
        let str_arg = |c: &mut Compiler, i: usize, what: &str| -> Result<(String, Span), KflError> {
            let a = args.get(i).ok_or_else(|| KflError::new(span, format!("`{name}()` needs {what}")))?;
            match &a.kind {
                Kind::Lit(Lit::Str { value, .. }) => Ok((value.clone(), a.span)),
                _ => {
                    let v = c.node(a)?;
                    Err(KflError::new(
                        a.span,
                        format!("`{name}()` takes {what} as a string literal, found {}", v.describe()),
                    ))
                }
            }
        };
        let expect_args = |n: usize| arity(name, n, args.len(), span);
        match name {
            "size" => {
                expect_args(1)?;
                let v = self.node(&args[0])?;
                self.size(v, span)
            }
            "matches" => {
                expect_args(2)?;
                let (s, re) = (self.node(&args[0])?, self.node(&args[1])?);
                if s.ty != Ty::Str || re.ty != Ty::Str {
                    return Err(KflError::new(
                        span,
                        format!("matches() takes two strings, found {} and {}", s.describe(), re.describe()),
                    ));
                }
                if let Some(Lit::Str { value, .. }) = &re.lit {
                    check_regex(value, re.span)?;
                }
                self.boolean(f::regexp_like(s.e, re.e, None), &s.scope, span, "a match")
            }
            "timestamp" => {
                expect_args(1)?;
                let (text, sp) = str_arg(self, 0, "an RFC 3339 time such as \"2026-03-14T22:00:00Z\"")?;
                let ns = parse_rfc3339(&text).ok_or_else(|| {
                    KflError::new(sp, format!("{text:?} is not an RFC 3339 time: expected e.g. \"2026-03-14T22:00:00Z\" or \"2026-03-14T22:00:00.5+01:00\""))
                })?;
                Ok(Val::new(ts_lit(ns), Ty::Timestamp, span, format!("timestamp({text:?})")))
            }
            "datetime" => {
                expect_args(1)?;
                let (text, sp) = str_arg(self, 0, "a time such as \"10/19/2021, 6:29:02 PM\"")?;
                let ns = parse_v1_datetime(&text).ok_or_else(|| {
                    KflError::new(
                        sp,
                        format!("{text:?} is not a KFL v1 datetime: expected \"M/D/YYYY, h:mm:ss AM\" (UTC)"),
                    )
                })?;
                self.note(format!("legacy datetime({text:?}) read as UTC; KFL2 writes timestamp(\"...\")"));
                Ok(Val::new(ts_lit(ns), Ty::Timestamp, span, format!("datetime({text:?})")))
            }
            "duration" => {
                expect_args(1)?;
                let (text, sp) = str_arg(self, 0, "a duration such as \"5m\" or \"1h30m\"")?;
                let ns = parse_duration(&text).ok_or_else(|| {
                    KflError::new(
                        sp,
                        format!("{text:?} is not a duration: expected numbers with units h, m, s, ms, us or ns, e.g. \"5m\", \"1.5s\", \"1h30m\""),
                    )
                })?;
                let iv = IntervalMonthDayNano { months: 0, days: 0, nanoseconds: ns };
                Ok(Val::new(
                    lit(ScalarValue::IntervalMonthDayNano(Some(iv))),
                    Ty::Duration,
                    span,
                    format!("duration({text:?})"),
                ))
            }
            "now" => {
                expect_args(0)?;
                let ns = self.env.now_ns.ok_or_else(|| {
                    KflError::new(span, "now() is the end of the snapshot's data, and this snapshot has no packets")
                })?;
                Ok(Val::new(ts_lit(ns), Ty::Timestamp, span, "now()"))
            }
            "map_get" => {
                expect_args(3)?;
                let (m, k, d) = (self.node(&args[0])?, self.node(&args[1])?, self.node(&args[2])?);
                if m.ty != Ty::Map {
                    return Err(KflError::new(m.span, format!("map_get() takes a map first, found {}", m.describe())));
                }
                if k.ty != Ty::Str || d.ty != Ty::Str {
                    return Err(KflError::new(
                        span,
                        format!(
                            "map_get(map, key, default) takes string keys and defaults, found {} and {}",
                            k.describe(),
                            d.describe()
                        ),
                    ));
                }
                let key = if m.lower_keys { lower_literal(&k) } else { k.e };
                let e = f::coalesce(vec![map_value(m.e, key), d.e]);
                let mut v = Val::new(e, Ty::Str, span, "map_get(...)");
                v.scope = m.scope;
                Ok(v)
            }
            "int" | "double" | "string" => {
                expect_args(1)?;
                let v = self.node(&args[0])?;
                let (dt, ty) = match name {
                    "int" => (DataType::Int64, Ty::Int),
                    "double" => (DataType::Float64, Ty::Double),
                    _ => (DataType::Utf8, Ty::Str),
                };
                if !matches!(v.ty, Ty::Int | Ty::Double | Ty::Str | Ty::Bool) {
                    return Err(KflError::new(span, format!("{name}() cannot convert {}", v.describe())));
                }
                let mut out = Val::new(cast(v.e, dt), ty, span, format!("{name}({})", v.label));
                out.scope = v.scope;
                Ok(out)
            }
            _ => Err(self.unknown_function(name, span)),
        }
    }
}

/// `name()` must be called with `want` arguments.
fn arity(name: &str, want: usize, found: usize, span: Span) -> Result<(), KflError> {
    if want == found {
        return Ok(());
    }
    Err(KflError::new(
        span,
        format!("`{name}()` takes {want} argument{}, found {found}", if want == 1 { "" } else { "s" }),
    ))
}

/// The first value of `key` in a map column, or null.
fn map_value(map: Expr, key: Expr) -> Expr {
    nf::array_element(nf::map_extract(map, key), lit(1i64))
}

fn lower_literal(v: &Val) -> Expr {
    match &v.lit {
        Some(Lit::Str { value, .. }) => lit(value.to_ascii_lowercase()),
        _ => f::lower(v.e.clone()),
    }
}

fn merge(a: &[&'static str], b: &[&'static str]) -> Vec<&'static str> {
    let mut out = a.to_vec();
    for s in b {
        if !out.contains(s) {
            out.push(s);
        }
    }
    out
}

fn quoted(values: &[impl AsRef<str>]) -> String {
    values.iter().map(|v| format!("{:?}", v.as_ref())).collect::<Vec<_>>().join(", ")
}

fn to_arrow(t: &Ty) -> DataType {
    match t {
        Ty::Int => DataType::Int64,
        Ty::Double => DataType::Float64,
        Ty::Bool => DataType::Boolean,
        _ => DataType::Utf8,
    }
}

fn ts_lit(ns: i64) -> Expr {
    lit(ScalarValue::TimestampNanosecond(Some(ns), Some("UTC".into())))
}

fn check_regex(re: &str, span: Span) -> Result<(), KflError> {
    regex::Regex::new(re).map(|_| ()).map_err(|e| {
        let msg = e.to_string();
        let first = msg.lines().last().unwrap_or("").trim().trim_start_matches("error: ").to_string();
        KflError::new(span, format!("invalid regular expression: {first}"))
    })
}

fn mismatch_hint(a: &Val, b: &Val) -> Option<String> {
    match (&a.ty, &b.ty, &b.lit) {
        (Ty::Int, Ty::Str, Some(Lit::Str { value, .. })) if value.trim().parse::<i64>().is_ok() => {
            Some(format!("write {} without quotes", value.trim()))
        }
        (Ty::Int, Ty::Duration, _) if a.label.contains("elapsed_time") => {
            Some("elapsed_time is an int of microseconds: 5 s is 5000000".into())
        }
        (Ty::Timestamp, Ty::Str, _) => Some("write timestamp(\"2026-03-14T22:00:00Z\")".into()),
        (Ty::Timestamp, Ty::Int, _) => {
            Some("compare timestamps with timestamp(\"...\") or now() - duration(\"5m\")".into())
        }
        (Ty::Str, Ty::Int, Some(Lit::Int(i))) => Some(format!("write \"{i}\" in quotes")),
        (Ty::Bool, Ty::Str, _) => Some("flags are tested on their own: `http`, `!http`".into()),
        _ => None,
    }
}

/// Names close to `name` (edit distance on the names with `.` and `_`
/// treated alike), best first, at most three.
fn nearest(name: &str, candidates: impl Iterator<Item = String>) -> Vec<String> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('.', "_");
    let n = norm(name);
    let mut scored: Vec<(usize, String)> = candidates
        .filter_map(|c| {
            let d = strsim::damerau_levenshtein(&n, &norm(&c));
            let limit = (n.len().max(c.len()) / 3).max(2);
            (d <= limit || (n.len() >= 4 && norm(&c).contains(&n))).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Gives every node of an alias's expansion the span of the alias.
fn relocate(mut n: Node, span: Span) -> Node {
    n.span = span;
    n.kind = match n.kind {
        Kind::Select(b, f) => Kind::Select(Box::new(relocate(*b, span)), f),
        Kind::Binary(op, a, b) => Kind::Binary(op, Box::new(relocate(*a, span)), Box::new(relocate(*b, span))),
        other => other,
    };
    n
}

/// KFL v1's `datetime("10/19/2021, 6:29:02 PM")`, read as UTC.
fn parse_v1_datetime(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(',')?;
    let mut dp = date.trim().split('/');
    let (mo, d, y): (i64, i64, i64) = (dp.next()?.parse().ok()?, dp.next()?.parse().ok()?, dp.next()?.parse().ok()?);
    let (clock, ampm) = time.trim().split_once(' ')?;
    let mut tp = clock.split(':');
    let (mut h, mi, sec): (i64, i64, i64) =
        (tp.next()?.parse().ok()?, tp.next()?.parse().ok()?, tp.next()?.parse().ok()?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || !(1..=12).contains(&h) || mi > 59 || sec > 59 {
        return None;
    }
    match ampm.trim() {
        "AM" | "am" => h %= 12,
        "PM" | "pm" => h = h % 12 + 12,
        _ => return None,
    }
    Some((days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-03-14T22:00:00Z"), Some(1_773_525_600_000_000_000));
        assert_eq!(parse_rfc3339("2026-03-14T23:00:00.5+01:00"), Some(1_773_525_600_500_000_000));
        assert_eq!(parse_rfc3339("2026-03-14"), None);
        assert_eq!(parse_rfc3339("2026-13-14T22:00:00Z"), None);
        assert_eq!(parse_v1_datetime("10/19/2021, 6:29:02 PM"), parse_rfc3339("2021-10-19T18:29:02Z"));
        assert_eq!(parse_v1_datetime("1/2/2006, 12:04:05 AM"), parse_rfc3339("2006-01-02T00:04:05Z"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Some(300_000_000_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_duration("-2us"), Some(-2_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn nearest_names() {
        let names = || ["status_code", "status_text", "src.ip", "dst.ip", "src.pod.name"].iter().map(|s| s.to_string());
        assert_eq!(nearest("status_cod", names()), vec!["status_code"]);
        assert_eq!(nearest("status", names()), vec!["status_code", "status_text"]);
        assert_eq!(nearest("src_pod_name", names()), vec!["src.pod.name"]);
        assert_eq!(nearest("zzz", names()), Vec::<String>::new());
    }
}
