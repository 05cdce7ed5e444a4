//! The parsed form of a template: values, the function table, expressions and nodes.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Value {
    /// Go's truth: the zero value of each type is false.
    pub(super) fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Int(n) => *n != 0,
            Value::Bool(b) => *b,
        }
    }
    /// Type codes: `s` string, `i` int, `b` bool; `a` (any) is only static, see [`Expr::ty`].
    pub(super) fn ty(&self) -> char {
        match self {
            Value::Str(_) => 's',
            Value::Int(_) => 'i',
            Value::Bool(_) => 'b',
        }
    }
    pub(super) fn show(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }
}

pub(super) fn type_name(ty: char) -> &'static str {
    match ty {
        's' => "string",
        'i' => "int",
        'b' => "bool",
        _ => "any",
    }
}

/// Name, parameter types, type of further arguments (`-`: none), result type. Types are
/// checked when parsing, so mistakes are refused when the template is written.
pub(super) const FUNCS: &[(&str, &str, char, char)] = &[
    ("eq", "aa", 'a', 'b'),
    ("ne", "aa", '-', 'b'),
    ("not", "a", '-', 'b'),
    ("and", "a", 'a', 'a'),
    ("or", "a", 'a', 'a'),
    ("printf", "s", 'a', 's'),
    ("random", "i", '-', 's'),
    ("truncate", "is", '-', 's'),
    ("truncate_sha256", "is", '-', 's'),
    ("unix_time", "", '-', 's'),
    ("unix_time_millis", "", '-', 's'),
    ("timestamp", "s", '-', 's'),
    ("uppercase", "s", '-', 's'),
    ("lowercase", "s", '-', 's'),
    ("replace", "sss", '-', 's'),
    ("sha256", "s", '-', 's'),
    ("base64", "s", '-', 's'),
    ("uuid", "", '-', 's'),
];

/// Functions whose result may differ between two renders: never folded by max_len.
pub(super) const IMPURE: [&str; 5] = ["random", "unix_time", "unix_time_millis", "timestamp", "uuid"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Type,
    DisplayName,
    PolicyName,
}

/// A pipeline `a | f x` is stored as the call `f x a`: Go passes the piped value last.
#[derive(Debug, Clone)]
pub(super) enum Expr {
    Lit(Value),
    Field(Field),
    Call(&'static str, Vec<Expr>),
}

impl Expr {
    pub(super) fn ty(&self) -> char {
        match self {
            Expr::Lit(v) => v.ty(),
            Expr::Field(_) => 's',
            // Go's and/or return one of their arguments.
            Expr::Call("and" | "or", args) => {
                let mut tys = args.iter().map(Expr::ty);
                let first = tys.next().unwrap_or('a');
                if tys.all(|t| t == first) { first } else { 'a' }
            }
            Expr::Call(f, _) => FUNCS.iter().find(|s| s.0 == *f).map_or('a', |s| s.3),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Action(Expr),
    /// `(condition, body)` of the `if` and of each `else if`, then the `else` body.
    If(Vec<(Expr, Vec<Node>)>, Vec<Node>),
}
