//! Document limits, checked around parsing and before async-graphql's own checks: bracket nesting (before the
//! parser sees the text), introspection when it is off, fragment fan-out, aliases and directives across the whole
//! document. Every generated schema registers [`DocumentLimits`].

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult};

use crate::schema::Limits;

/// Brackets (`{`, `(`, `[`) a document may nest before it is even parsed: the parser recurses on them.
pub(crate) const MAX_NESTING: usize = 64;

impl From<Limits> for DocumentLimits {
    fn from(limits: Limits) -> Self {
        DocumentLimits {
            max_fields: limits.max_complexity,
            max_aliases: limits.max_aliases,
            max_directives: limits.max_directives,
            introspection: limits.introspection,
        }
    }
}

/// Document limits checked around parsing, before validation: bracket nesting (before the parser sees the text),
/// then introspection when it is off (async-graphql alone would answer `__schema: null`, not an error), then aliases
/// and directives across the whole document (alias batching and directive overloading amplify one
/// small request into a lot of work; async-graphql's own directive limit is per field, and walks fragment spreads
/// without memo, so it is not used), and the document's size once fragments are spread (validation expands them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DocumentLimits {
    max_fields: usize,
    max_aliases: usize,
    max_directives: usize,
    introspection: bool,
}

impl ExtensionFactory for DocumentLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_trait::async_trait]
impl Extension for DocumentLimits {
    // Before async-graphql's own checks: its recursion-depth check walks every fragment spread without memo, so a
    // document that spreads two fragments per level for 30 levels costs it 2^30 steps (a minute of CPU) unless the
    // fan-out is refused first.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        if nesting(&request.query) > MAX_NESTING {
            return Err(ServerError::new(format!("The document nests brackets deeper than {MAX_NESTING}."), None));
        }
        // Parsed once: async-graphql uses this document rather than parsing again.
        let document = request.parsed_query()?;
        if !self.introspection && introspects(document) {
            return Err(ServerError::new("Introspection is disabled on this server.", None));
        }
        // Fragments spread twice per level double the work at each level: validation would walk 2^N fields.
        if expanded_fields(document) > self.max_fields {
            return Err(ServerError::new(
                format!("The document expands to more than {} fields once its fragments are spread.", self.max_fields),
                None,
            ));
        }
        let (aliases, directives) = count_aliases_and_directives(document);
        if aliases > self.max_aliases {
            return Err(ServerError::new(
                format!("The document has {aliases} aliases; the limit is {}.", self.max_aliases),
                None,
            ));
        }
        if directives > self.max_directives {
            return Err(ServerError::new(
                format!("The document has {directives} directives; the limit is {}.", self.max_directives),
                None,
            ));
        }
        next.run(ctx, request).await
    }
}

/// The deepest bracket nesting of a document's text, outside strings and comments.
pub(crate) fn nesting(query: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut in_comment, mut escaped) = (0usize, 0usize, false, false, false);
    for byte in query.bytes() {
        if in_comment {
            in_comment = byte != b'\n' && byte != b'\r';
        } else if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'#' => in_comment = true,
                b'{' | b'(' | b'[' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b'}' | b')' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    deepest
}

/// Whether a document asks for `__schema` or `__type` (at any level: fragments count too; `__typename` is fine).
fn introspects(document: &ExecutableDocument) -> bool {
    fn any(set: &SelectionSet) -> bool {
        set.items.iter().any(|selection| match &selection.node {
            Selection::Field(field) => {
                matches!(field.node.name.node.as_str(), "__schema" | "__type") || any(&field.node.selection_set.node)
            }
            Selection::FragmentSpread(_) => false,
            Selection::InlineFragment(inline) => any(&inline.node.selection_set.node),
        })
    }
    document.operations.iter().any(|(_, op)| any(&op.node.selection_set.node))
        || document.fragments.values().any(|f| any(&f.node.selection_set.node))
}

/// How many fields a document selects once every fragment spread is replaced by its fragment (saturating; a
/// fragment cycle counts as `usize::MAX`), computed once per fragment so that the count itself stays cheap.
pub(crate) fn expanded_fields(document: &ExecutableDocument) -> usize {
    use std::collections::HashMap;
    fn set_size<'a>(
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        memo: &mut HashMap<&'a str, Option<usize>>,
    ) -> usize {
        let mut total = 0usize;
        for selection in &set.items {
            let size = match &selection.node {
                Selection::Field(field) => {
                    1usize.saturating_add(set_size(document, &field.node.selection_set.node, memo))
                }
                Selection::InlineFragment(inline) => set_size(document, &inline.node.selection_set.node, memo),
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    match memo.get(name) {
                        Some(Some(size)) => *size,
                        // Being computed: a cycle.
                        Some(None) => usize::MAX,
                        None => match document.fragments.get(&spread.node.fragment_name.node) {
                            None => 0,
                            Some(fragment) => {
                                memo.insert(name, None);
                                let size = set_size(document, &fragment.node.selection_set.node, memo);
                                memo.insert(name, Some(size));
                                size
                            }
                        },
                    }
                }
            };
            total = total.saturating_add(size);
        }
        total
    }
    let mut memo = HashMap::new();
    document
        .operations
        .iter()
        .map(|(_, op)| set_size(document, &op.node.selection_set.node, &mut memo))
        .fold(0usize, usize::saturating_add)
}

/// Aliases and directives in a parsed document (each fragment definition counted once).
pub(crate) fn count_aliases_and_directives(document: &ExecutableDocument) -> (usize, usize) {
    fn walk(set: &SelectionSet, counts: &mut (usize, usize)) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    counts.0 += usize::from(field.node.alias.is_some());
                    counts.1 += field.node.directives.len();
                    walk(&field.node.selection_set.node, counts);
                }
                Selection::FragmentSpread(spread) => counts.1 += spread.node.directives.len(),
                Selection::InlineFragment(inline) => {
                    counts.1 += inline.node.directives.len();
                    walk(&inline.node.selection_set.node, counts);
                }
            }
        }
    }
    let mut counts = (0, 0);
    for (_, operation) in document.operations.iter() {
        counts.1 += operation.node.directives.len();
        counts.1 += operation.node.variable_definitions.iter().map(|v| v.node.directives.len()).sum::<usize>();
        walk(&operation.node.selection_set.node, &mut counts);
    }
    for fragment in document.fragments.values() {
        counts.1 += fragment.node.directives.len();
        walk(&fragment.node.selection_set.node, &mut counts);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_fan_out_is_counted_without_expanding_it() {
        let mut query = "query { ...F0 } ".to_owned();
        for i in 0..70 {
            query += &format!("fragment F{i} on Query {{ a: __typename ...F{} b: __typename ...F{} }} ", i + 1, i + 1);
        }
        query += "fragment F70 on Query { __typename }";
        let document = async_graphql::parser::parse_query(&query).unwrap();
        assert_eq!(expanded_fields(&document), usize::MAX);
        let small = async_graphql::parser::parse_query("{ a { b c } ...F } fragment F on Q { d }").unwrap();
        assert_eq!(expanded_fields(&small), 4);
        let cycle = async_graphql::parser::parse_query("{ ...A } fragment A on Q { ...A }").unwrap();
        assert_eq!(expanded_fields(&cycle), usize::MAX);
    }

    #[test]
    fn nesting_skips_strings_and_comments() {
        assert_eq!(nesting("{ a { b(x: [1, [2]]) } }"), 5);
        assert_eq!(
            nesting(
                r#"{ a(s: "{{{{ \" {{") # {{{{
 }"#
            ),
            2
        );
    }
}
