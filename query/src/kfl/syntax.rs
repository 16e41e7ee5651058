//! KFL2 syntax: tokens and a recursive-descent parser producing an AST with
//! byte spans, so every later error can point at the text it is about.
//!
//! The grammar is CEL's (google/cel-spec `langdef.md`), which KFL2 is a
//! dialect of, plus the legacy KFL v1 forms still found in Kubeshark's
//! examples: `and`/`or`/`not` as words, `nil`, and infix `contains`,
//! `startsWith`, `endsWith` and `matches` (`request.path contains "/api"`).
//!
//! Precedence, lowest first: `?:`, `||`, `&&`, relations
//! (`== != < <= > >= in`), `+ -`, `* / %`, unary `! -`, then member access
//! (`.name`, `.method(...)`, `[index]`).
//!
//! One file: the tokenizer and the recursive-descent parser share their
//! precedence table; tests are the last hundred lines.

use super::error::{KflError, Span};

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    /// `raw` is set for `r"..."`, which KFL v1 used as a regular expression.
    Str {
        value: String,
        raw: bool,
    },
    Bytes(Vec<u8>),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Lit(Lit),
    Ident(String),
    /// `operand.field`
    Select(Box<Node>, String),
    /// `name(args)` or `target.name(args)`
    Call {
        target: Option<Box<Node>>,
        name: String,
        args: Vec<Node>,
    },
    /// `operand[index]`
    Index(Box<Node>, Box<Node>),
    List(Vec<Node>),
    Unary(UnOp, Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Ternary(Box<Node>, Box<Node>, Box<Node>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
}

impl Node {
    /// The dotted name of an identifier chain (`src.pod.name`), if it is one.
    pub fn dotted(&self) -> Option<String> {
        match &self.kind {
            Kind::Ident(s) => Some(s.clone()),
            Kind::Select(base, f) => base.dotted().map(|b| format!("{b}.{f}")),
            _ => None,
        }
    }
}

/// Legacy spellings met while parsing, reported back as notes.
#[derive(Debug, Default, Clone)]
pub struct Legacy {
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Lit(Lit),
    Punct(&'static str),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Lit(Lit::Str { .. }) => "a string".into(),
            Tok::Lit(_) => "a literal".into(),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::End => "the end of the filter".into(),
        }
    }
}

const PUNCT: [&str; 26] = [
    "==", "!=", "<=", ">=", "&&", "||", "(", ")", "[", "]", "{", "}", ".", ",", "?", ":", "!", "-", "+", "*", "/", "%",
    "<", ">", "=", ";",
];

fn lex(src: &str) -> Result<Vec<(Tok, Span)>, KflError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        // Raw and bytes string prefixes: r"..", R"..", b"..", rb"..", br"..".
        let mut prefix_len = 0;
        let (mut raw, mut bytes) = (false, false);
        while prefix_len < 2 && i + prefix_len < b.len() {
            match b[i + prefix_len] {
                b'r' | b'R' if !raw => raw = true,
                b'b' | b'B' if !bytes => bytes = true,
                _ => break,
            }
            prefix_len += 1;
        }
        if prefix_len > 0 && matches!(b.get(i + prefix_len), Some(b'"' | b'\'')) {
            i += prefix_len;
        } else {
            raw = false;
            bytes = false;
        }
        let c = b[i];
        if c == b'"' || c == b'\'' {
            let (value, end) = lex_string(src, i, raw)?;
            let lit = if bytes { Lit::Bytes(value.into_bytes()) } else { Lit::Str { value, raw } };
            out.push((Tok::Lit(lit), Span::new(start, end)));
            i = end;
            continue;
        }
        i = start;
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (lit, end) = lex_number(src, i)?;
            out.push((Tok::Lit(lit), Span::new(start, end)));
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(src[start..i].to_string()), Span::new(start, i)));
            continue;
        }
        match PUNCT.iter().find(|p| src[i..].starts_with(**p)) {
            Some(p) => {
                if *p == "=" {
                    return Err(KflError::new(Span::new(i, i + 1), "`=` is not an operator; use `==` to compare"));
                }
                i += p.len();
                out.push((Tok::Punct(p), Span::new(start, i)));
            }
            None => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(KflError::new(Span::new(i, i + ch.len_utf8()), format!("unexpected character `{ch}`")));
            }
        }
    }
    out.push((Tok::End, Span::new(src.len(), src.len())));
    Ok(out)
}

fn lex_string(src: &str, start: usize, raw: bool) -> Result<(String, usize), KflError> {
    let b = src.as_bytes();
    let q = b[start];
    let triple = b.len() >= start + 3 && b[start + 1] == q && b[start + 2] == q;
    let mut i = start + if triple { 3 } else { 1 };
    let mut out = String::new();
    loop {
        if i >= b.len() {
            return Err(KflError::new(Span::new(start, src.len()), "unterminated string: expected a closing quote"));
        }
        if triple && b[i] == q && b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q) {
            return Ok((out, i + 3));
        }
        if !triple && b[i] == q {
            return Ok((out, i + 1));
        }
        if !triple && b[i] == b'\n' {
            return Err(KflError::new(
                Span::new(start, i),
                "unterminated string: expected a closing quote before the end of the line",
            ));
        }
        let ch = src[i..].chars().next().unwrap_or('\0');
        if ch == '\\' && !raw {
            let esc =
                src[i + 1..].chars().next().ok_or_else(|| KflError::new(Span::new(i, i + 1), "unterminated escape"))?;
            let (c, len) = match esc {
                'n' => ('\n', 2),
                't' => ('\t', 2),
                'r' => ('\r', 2),
                '0' => ('\0', 2),
                '\\' | '"' | '\'' | '`' | '?' => (esc, 2),
                'x' | 'u' | 'U' => {
                    let digits = match esc {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex = src.get(i + 2..i + 2 + digits).unwrap_or("");
                    let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32).ok_or_else(|| {
                        KflError::new(
                            Span::new(i, (i + 2 + digits).min(src.len())),
                            format!("bad `\\{esc}` escape: expected {digits} hex digits"),
                        )
                    })?;
                    (c, 2 + digits)
                }
                other => {
                    return Err(KflError::new(
                        Span::new(i, i + 1 + other.len_utf8()),
                        format!("unknown escape `\\{other}`"),
                    ));
                }
            };
            out.push(c);
            i += len;
        } else {
            out.push(ch);
            i += ch.len_utf8();
        }
    }
}

fn lex_number(src: &str, start: usize) -> Result<(Lit, usize), KflError> {
    let b = src.as_bytes();
    let mut i = start;
    if src[i..].starts_with("0x") || src[i..].starts_with("0X") {
        i += 2;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        let v = i64::from_str_radix(&src[start + 2..i], 16);
        let unsigned = matches!(b.get(i), Some(b'u' | b'U'));
        let end = i + usize::from(unsigned);
        return match (v, unsigned) {
            (Ok(v), false) => Ok((Lit::Int(v), end)),
            _ => u64::from_str_radix(&src[start + 2..i], 16)
                .map(|v| (Lit::UInt(v), end))
                .map_err(|_| KflError::new(Span::new(start, end), "hexadecimal number out of range")),
        };
    }
    let mut float = false;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'e' || b[i] == b'E') {
        if b[i] == b'.' {
            // `1.size()` is not a float; `1.5` is.
            if !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                break;
            }
            float = true;
        }
        if b[i] == b'e' || b[i] == b'E' {
            float = true;
            if matches!(b.get(i + 1), Some(b'+' | b'-')) {
                i += 1;
            }
        }
        i += 1;
    }
    let text = &src[start..i];
    let bad = |end| KflError::new(Span::new(start, end), format!("`{}` is not a number", &src[start..end]));
    if float {
        return text.parse::<f64>().map(|v| (Lit::Double(v), i)).map_err(|_| bad(i));
    }
    if matches!(b.get(i), Some(b'u' | b'U')) {
        return text.parse::<u64>().map(|v| (Lit::UInt(v), i + 1)).map_err(|_| bad(i + 1));
    }
    match text.parse::<i64>() {
        Ok(v) => Ok((Lit::Int(v), i)),
        // 2^63 is only valid negated (i64::MIN): kept unsigned until the
        // parser folds the minus sign.
        Err(_) => text.parse::<u64>().ok().filter(|v| *v == 1 << 63).map(|v| (Lit::UInt(v), i)).ok_or_else(|| bad(i)),
    }
}

/// Words that KFL v1 used as operators.
fn legacy_word(s: &str) -> Option<&'static str> {
    match s {
        "and" | "AND" => Some("&&"),
        "or" | "OR" => Some("||"),
        "not" | "NOT" => Some("!"),
        _ => None,
    }
}

const INFIX_METHODS: [&str; 4] = ["contains", "startsWith", "endsWith", "matches"];

struct Parser<'a> {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    legacy: &'a mut Legacy,
    depth: usize,
}

/// Nesting limit: deeper filters are refused instead of overflowing the stack.
const MAX_DEPTH: usize = 64;

/// Depth limit of the tree (a chain `a && b && ...` deepens it too).
const MAX_TREE_DEPTH: usize = 256;

/// Parses a KFL2 filter. An empty (or all-blank) filter is `None`: it
/// matches everything.
pub fn parse(src: &str, legacy: &mut Legacy) -> Result<Option<Node>, KflError> {
    let toks = lex(src)?;
    if toks.len() == 1 {
        return Ok(None);
    }
    let mut p = Parser { toks, pos: 0, legacy, depth: 0 };
    let node = p.expr()?;
    match p.peek() {
        Tok::End => {
            if tree_depth(&node) > MAX_TREE_DEPTH {
                return Err(KflError::new(node.span, format!("filter is too deep (more than {MAX_TREE_DEPTH} nested operations)")));
            }
            Ok(Some(node))
        }
        Tok::Punct(";") => {
            Err(p.error_here("`;` is not an operator: Kubeshark's docs use it to separate alternative filters; run them one at a time or join them with `||`"))
        }
        t => {
            let msg = format!("unexpected {}: expected an operator (`&&`, `||`, `==`, ...) or the end of the filter", t.describe());
            Err(p.error_here(msg))
        }
    }
}

/// Depth of a tree, without recursion.
fn tree_depth<'a>(root: &'a Node) -> usize {
    let mut max = 0;
    let mut stack: Vec<(&'a Node, usize)> = vec![(root, 1usize)];
    while let Some((n, d)) = stack.pop() {
        max = max.max(d);
        let mut push = |c: &'a Node| stack.push((c, d + 1));
        match &n.kind {
            Kind::Lit(_) | Kind::Ident(_) => {}
            Kind::Select(b, _) | Kind::Unary(_, b) => push(b),
            Kind::Call { target, args, .. } => {
                if let Some(t) = target {
                    push(t);
                }
                args.iter().for_each(&mut push);
            }
            Kind::Index(a, b) | Kind::Binary(_, a, b) => {
                push(a);
                push(b);
            }
            Kind::List(items) => items.iter().for_each(&mut push),
            Kind::Ternary(a, b, c) => {
                push(a);
                push(b);
                push(c);
            }
        }
    }
    max
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn span(&self) -> Span {
        self.toks[self.pos].1
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 { 0 } else { self.toks[self.pos - 1].1.end }
    }

    fn error_here(&self, msg: impl Into<String>) -> KflError {
        KflError::new(self.span(), msg)
    }

    fn bump(&mut self) -> (Tok, Span) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    /// The operator at the cursor, with KFL v1 words mapped to symbols.
    fn op(&mut self) -> Option<&'static str> {
        match self.peek() {
            Tok::Punct(p) => Some(p),
            Tok::Ident(s) if s == "in" => Some("in"),
            Tok::Ident(s) => {
                let w = legacy_word(s)?;
                if w == "!" {
                    return None;
                }
                Some(w)
            }
            _ => None,
        }
    }

    fn note_word(&mut self) {
        if let Tok::Ident(s) = self.peek()
            && let Some(sym) = legacy_word(s)
        {
            let note = format!("legacy KFL v1 `{s}` read as `{sym}`");
            if !self.legacy.notes.contains(&note) {
                self.legacy.notes.push(note);
            }
        }
    }

    fn expect(&mut self, p: &'static str, what: &str) -> Result<Span, KflError> {
        if self.peek() == &Tok::Punct(p) {
            return Ok(self.bump().1);
        }
        Err(self.error_here(format!("expected `{p}` {what}, found {}", self.peek().describe())))
    }

    fn enter(&mut self) -> Result<(), KflError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here(format!("filter nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Node, KflError> {
        self.enter()?;
        let cond = self.binary(0)?;
        let out = if self.peek() == &Tok::Punct("?") {
            self.bump();
            let a = self.expr()?;
            self.expect(":", "in `condition ? a : b`")?;
            let b = self.expr()?;
            let span = cond.span.to(b.span);
            Node { kind: Kind::Ternary(Box::new(cond), Box::new(a), Box::new(b)), span }
        } else {
            cond
        };
        self.depth -= 1;
        Ok(out)
    }

    fn binary(&mut self, level: usize) -> Result<Node, KflError> {
        const LEVELS: [&[(&str, BinOp)]; 5] = [
            &[("||", BinOp::Or)],
            &[("&&", BinOp::And)],
            &[
                ("==", BinOp::Eq),
                ("!=", BinOp::Ne),
                ("<=", BinOp::Le),
                (">=", BinOp::Ge),
                ("<", BinOp::Lt),
                (">", BinOp::Gt),
                ("in", BinOp::In),
            ],
            &[("+", BinOp::Add), ("-", BinOp::Sub)],
            &[("*", BinOp::Mul), ("/", BinOp::Div), ("%", BinOp::Rem)],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut lhs = self.binary(level + 1)?;
        loop {
            // Legacy infix string methods bind like relations.
            if level == 2
                && let Tok::Ident(w) = self.peek()
                && INFIX_METHODS.contains(&w.as_str())
            {
                let name = w.clone();
                self.bump();
                let rhs = self.binary(level + 1)?;
                let span = lhs.span.to(rhs.span);
                let note = format!("legacy infix `{name}` read as a method call `.{name}(...)`");
                if !self.legacy.notes.contains(&note) {
                    self.legacy.notes.push(note);
                }
                lhs = Node { kind: Kind::Call { target: Some(Box::new(lhs)), name, args: vec![rhs] }, span };
                continue;
            }
            let Some(sym) = self.op() else { break };
            let Some(&(_, op)) = LEVELS[level].iter().find(|(s, _)| *s == sym) else { break };
            self.note_word();
            self.bump();
            let rhs = self.binary(level + 1)?;
            let span = lhs.span.to(rhs.span);
            lhs = Node { kind: Kind::Binary(op, Box::new(lhs), Box::new(rhs)), span };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Node, KflError> {
        let start = self.span();
        let op = match self.peek() {
            Tok::Punct("!") => Some(UnOp::Not),
            Tok::Punct("-") => Some(UnOp::Neg),
            Tok::Ident(s) if legacy_word(s) == Some("!") => Some(UnOp::Not),
            _ => None,
        };
        if let Some(op) = op {
            self.note_word();
            self.bump();
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            // Fold `-` into numeric literals so that i64::MIN is expressible.
            if op == UnOp::Neg
                && let Kind::Lit(Lit::Int(v)) = inner.kind
            {
                return Ok(Node { kind: Kind::Lit(Lit::Int(-v)), span: start.to(inner.span) });
            }
            if op == UnOp::Neg
                && let Kind::Lit(Lit::UInt(v)) = inner.kind
                && v == 1 << 63
            {
                return Ok(Node { kind: Kind::Lit(Lit::Int(i64::MIN)), span: start.to(inner.span) });
            }
            if op == UnOp::Neg
                && let Kind::Lit(Lit::Double(v)) = inner.kind
            {
                return Ok(Node { kind: Kind::Lit(Lit::Double(-v)), span: start.to(inner.span) });
            }
            let span = start.to(inner.span);
            return Ok(Node { kind: Kind::Unary(op, Box::new(inner)), span });
        }
        self.member()
    }

    fn member(&mut self) -> Result<Node, KflError> {
        let mut node = self.primary()?;
        loop {
            match self.peek() {
                Tok::Punct(".") => {
                    self.bump();
                    let (tok, span) = self.bump();
                    let Tok::Ident(name) = tok else {
                        return Err(KflError::new(
                            span,
                            format!("expected a field or method name after `.`, found {}", tok.describe()),
                        ));
                    };
                    if self.peek() == &Tok::Punct("(") {
                        let args = self.args()?;
                        let span = node.span.to(Span::new(span.start, self.prev_end()));
                        node = Node { kind: Kind::Call { target: Some(Box::new(node)), name, args }, span };
                    } else {
                        let span = node.span.to(span);
                        node = Node { kind: Kind::Select(Box::new(node), name), span };
                    }
                }
                Tok::Punct("[") => {
                    self.bump();
                    let idx = self.expr()?;
                    let end = self.expect("]", "to close the index")?;
                    let span = node.span.to(end);
                    node = Node { kind: Kind::Index(Box::new(node), Box::new(idx)), span };
                }
                _ => return Ok(node),
            }
        }
    }

    fn args(&mut self) -> Result<Vec<Node>, KflError> {
        self.expect("(", "")?;
        let mut args = Vec::new();
        if self.peek() == &Tok::Punct(")") {
            self.bump();
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            match self.peek() {
                Tok::Punct(",") => {
                    self.bump();
                }
                Tok::Punct(")") => {
                    self.bump();
                    return Ok(args);
                }
                t => {
                    return Err(
                        self.error_here(format!("expected `,` or `)` in the argument list, found {}", t.describe()))
                    );
                }
            }
        }
    }

    fn primary(&mut self) -> Result<Node, KflError> {
        let (tok, span) = self.bump();
        match tok {
            Tok::Lit(l) => Ok(Node { kind: Kind::Lit(l), span }),
            Tok::Ident(name) => {
                let kind = match name.as_str() {
                    "true" => Kind::Lit(Lit::Bool(true)),
                    "false" => Kind::Lit(Lit::Bool(false)),
                    "null" => Kind::Lit(Lit::Null),
                    "nil" => {
                        self.legacy.notes.push("legacy KFL v1 `nil` read as `null`".into());
                        Kind::Lit(Lit::Null)
                    }
                    _ if self.peek() == &Tok::Punct("(") => {
                        let args = self.args()?;
                        let span = Span::new(span.start, self.prev_end());
                        return Ok(Node { kind: Kind::Call { target: None, name, args }, span });
                    }
                    _ => Kind::Ident(name),
                };
                Ok(Node { kind, span })
            }
            Tok::Punct("(") => {
                self.enter()?;
                let inner = self.expr()?;
                self.depth -= 1;
                let end = self.expect(")", "to close the parenthesis")?;
                Ok(Node { kind: inner.kind, span: span.to(end) })
            }
            Tok::Punct("[") => {
                let mut items = Vec::new();
                if self.peek() != &Tok::Punct("]") {
                    loop {
                        items.push(self.expr()?);
                        if self.peek() == &Tok::Punct(",") {
                            self.bump();
                            if self.peek() == &Tok::Punct("]") {
                                break;
                            }
                            continue;
                        }
                        break;
                    }
                }
                let end = self.expect("]", "to close the list")?;
                Ok(Node { kind: Kind::List(items), span: span.to(end) })
            }
            Tok::End => Err(KflError::new(span, "unexpected end of the filter: expected a value, a field or `(`")),
            t => Err(KflError::new(span, format!("unexpected {}: expected a value, a field or `(`", t.describe()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Node {
        parse(s, &mut Legacy::default()).unwrap().unwrap()
    }

    fn show(n: &Node) -> String {
        match &n.kind {
            Kind::Lit(Lit::Str { value, .. }) => format!("{value:?}"),
            Kind::Lit(l) => format!("{l:?}"),
            Kind::Ident(s) => s.clone(),
            Kind::Select(b, f) => format!("{}.{f}", show(b)),
            Kind::Call { target, name, args } => {
                let a: Vec<_> = args.iter().map(show).collect();
                match target {
                    Some(t) => format!("{}.{name}({})", show(t), a.join(", ")),
                    None => format!("{name}({})", a.join(", ")),
                }
            }
            Kind::Index(b, i) => format!("{}[{}]", show(b), show(i)),
            Kind::List(items) => format!("[{}]", items.iter().map(show).collect::<Vec<_>>().join(", ")),
            Kind::Unary(op, x) => format!("({op:?} {})", show(x)),
            Kind::Binary(op, a, b) => format!("({} {} {})", show(a), op.symbol(), show(b)),
            Kind::Ternary(c, a, b) => format!("({} ? {} : {})", show(c), show(a), show(b)),
        }
    }

    #[test]
    fn precedence_follows_cel() {
        assert_eq!(show(&p("a || b && c")), "(a || (b && c))");
        assert_eq!(
            show(&p("http && status_code >= 500 || (tcp && x != \"\")")),
            "((http && (status_code >= Int(500))) || (tcp && (x != \"\")))"
        );
        assert_eq!(show(&p("!a && b")), "((Not a) && b)");
        assert_eq!(show(&p("1 + 2 * 3 == 7")), "((Int(1) + (Int(2) * Int(3))) == Int(7))");
        assert_eq!(show(&p("a ? b : c ? d : e")), "(a ? b : (c ? d : e))");
        assert_eq!(show(&p("timestamp > now() - duration(\"5m\")")), "(timestamp > (now() - duration(\"5m\")))");
    }

    #[test]
    fn members_calls_and_indexes() {
        assert_eq!(show(&p("dst.name.contains(\"payment\")")), "dst.name.contains(\"payment\")");
        assert_eq!(
            show(&p("request.headers[\"content-type\"] == 'a'")),
            "(request.headers[\"content-type\"] == \"a\")"
        );
        assert_eq!(
            show(&p("dns_questions.exists(q, q.contains(\"x\"))")),
            "dns_questions.exists(q, q.contains(\"x\"))"
        );
        assert_eq!(show(&p("\"A\" in dns_question_types")), "(\"A\" in dns_question_types)");
        assert_eq!(show(&p("dst.port in [80, 443,]")), "(dst.port in [Int(80), Int(443)])");
    }

    #[test]
    fn literals() {
        assert_eq!(show(&p("-9223372036854775808")), "Int(-9223372036854775808)");
        assert_eq!(show(&p("18446744073709551615u")), "UInt(18446744073709551615)");
        assert_eq!(show(&p("0x1F")), "Int(31)");
        assert_eq!(show(&p("1.5e3")), "Double(1500.0)");
        assert_eq!(show(&p(r#""a\tb\u00e9""#)), "\"a\\tbé\"");
        assert_eq!(show(&p(r#"r"4.*\d""#)), "\"4.*\\\\d\"");
        assert_eq!(show(&p("'''x'y'''")), "\"x'y\"");
    }

    #[test]
    fn legacy_words_and_infix_methods() {
        let mut l = Legacy::default();
        let n = parse("http and request.path contains \"/api\" or not tls", &mut l).unwrap().unwrap();
        assert_eq!(show(&n), "((http && request.path.contains(\"/api\")) || (Not tls))");
        assert_eq!(l.notes.len(), 4, "{:?}", l.notes);
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = parse("http && status_code >= ", &mut Legacy::default()).unwrap_err();
        assert_eq!((e.span.start, e.span.end), (23, 23));
        assert!(e.message.contains("expected a value"), "{}", e.message);
        let e = parse("status_code = 200", &mut Legacy::default()).unwrap_err();
        assert_eq!(e.span.start, 12);
        assert!(e.message.contains("use `==`"));
        let e = parse("(http && dns", &mut Legacy::default()).unwrap_err();
        assert!(e.message.contains("expected `)`"), "{}", e.message);
        let e = parse("a ; b", &mut Legacy::default()).unwrap_err();
        assert!(e.message.contains("alternative filters"));
        let e = parse("path == \"abc", &mut Legacy::default()).unwrap_err();
        assert!(e.message.contains("unterminated string"));
        let deep = "(".repeat(5000) + "a" + &")".repeat(5000);
        assert!(parse(&deep, &mut Legacy::default()).unwrap_err().message.contains("nests deeper"));
        let deep = "!".repeat(5000) + "a";
        assert!(parse(&deep, &mut Legacy::default()).is_err());
        let long = vec!["a"; 5000].join(" && ");
        assert!(parse(&long, &mut Legacy::default()).unwrap_err().message.contains("too deep"));
        let ok = vec!["a"; 200].join(" && ");
        assert!(parse(&ok, &mut Legacy::default()).is_ok());
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(parse("  ", &mut Legacy::default()).unwrap().is_none());
    }
}
