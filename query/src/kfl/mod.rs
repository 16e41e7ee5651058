//! KFL2, Kubeshark's filter language (a CEL dialect), compiled to
//! DataFusion logical expressions. See docs/kfl.md.
//!
//! - [`syntax`]: tokens and parser (AST with spans);
//! - [`fields`]: every variable, the column behind it, its scope;
//! - [`legacy`]: KFL v1 / compact names and their KFL2 rewrites;
//! - [`compile`]: typing and lowering to `Expr`.

pub mod compile;
mod error;
pub mod fields;
pub mod legacy;
pub mod syntax;

pub use compile::{Compiled, Env, compile};
pub use error::{KflError, Span};
pub use fields::Table;

/// docs/kfl.md, generated from the variable and alias tables (see
/// `kfl_doc_is_current` in the tests).
pub fn markdown() -> String {
    let intro = include_str!("kfl_intro.md");
    format!(
        "{intro}\n## Variables\n\n{}\n## Known, not answered yet\n\nNaming one of these is an error that says why, never an empty result.\n\n{}\n## Legacy rewrites\n\nKFL v1 and Kubeshark's compact JSON names are rewritten before compiling; the rewrite is reported as a note.\n\n{}",
        fields::markdown_variables(),
        fields::markdown_pending(),
        legacy::markdown()
    )
}
