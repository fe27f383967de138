//! Property tests.
//!
//! * `random_set_ops_change_only_their_spans`: random well-formed documents (comments holding
//!   lookalike elements, CDATA, references, CRLF or LF, mixed indentation, both empty-element
//!   forms) and random `set_text`/`set_attr` ops. The generator records where each value sits
//!   while it renders the document, so the expected output is computed independently of the
//!   engine: the original with exactly those spans replaced. Then roxmltree reads the values
//!   back and re-applying must be a byte-identical no-op.
//! * `arbitrary_input_never_panics` / `xmlish_input_never_panics`: parsing and patching
//!   arbitrary bytes or XML-like token soup returns `Ok` or `Err`, never panics.
//!
//! More cases: `PROPTEST_CASES=20000 cargo test -p apim-xmlpatch --release --test props`.

use std::collections::BTreeMap;
use std::ops::Range;

use apim_xmlpatch::{Count, Document, Op, escape_attr, escape_text};
use proptest::prelude::*;

/// A generated element: name, attributes (name, value), and either a text leaf or children.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    attrs: Vec<(String, String, char)>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// Text rendered escaped; `empty_form` renders "" as `<x/>`.
    Leaf {
        text: String,
        empty_form: bool,
        cdata: bool,
    },
    Children(Vec<Node>),
}

/// Where the renderer put each value, by element id.
#[derive(Debug, Default)]
struct Spans {
    /// Content range of leaves (or the `/>` range of empty-form leaves).
    leaf: BTreeMap<usize, (Range<usize>, bool)>,
    /// Raw value range and quote of each attribute, by (id, attr name).
    attr: BTreeMap<(usize, String), (Range<usize>, char)>,
    /// Offset just after the last attribute (where new attributes go) and its quote.
    attr_end: BTreeMap<usize, (usize, char)>,
    names: BTreeMap<usize, String>,
    /// Whole element spans, `<` to the end of the end tag.
    elem: BTreeMap<usize, Range<usize>>,
    leaf_text: BTreeMap<usize, String>,
    attr_value: BTreeMap<(usize, String), String>,
}

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "item", "name", "Server", "x-y", "p:q"])
        .prop_map(str::to_string)
}

fn plain_value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ./:&<>'\"=-]{0,12}"
}

fn new_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ./:&<>'\"=?-]{0,16}",
        "[\\PC]{0,6}",
        Just("jdbc:mysql://h:3306/db?autoReconnect=true&useSSL=false".to_string()),
        Just("tab\tnew\nline".to_string()),
    ]
}

fn attrs() -> impl Strategy<Value = Vec<(String, String, char)>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["k", "v", "w"]),
            plain_value(),
            prop::sample::select(vec!['"', '\'']),
        ),
        0..3,
    )
    .prop_map(|v| {
        let mut seen = Vec::new();
        v.into_iter()
            .filter(|(n, _, _)| {
                let fresh = !seen.contains(n);
                seen.push(*n);
                fresh
            })
            .map(|(n, val, q)| (n.to_string(), val, q))
            .collect::<Vec<_>>()
    })
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = (name(), attrs(), plain_value(), any::<bool>(), any::<bool>()).prop_map(
        |(name, attrs, text, empty_form, cdata)| Node {
            name,
            attrs,
            body: Body::Leaf {
                cdata: cdata && !text.contains("]]>") && !text.is_empty(),
                text,
                empty_form,
            },
        },
    );
    leaf.prop_recursive(4, 40, 5, move |inner| {
        (name(), attrs(), prop::collection::vec(inner, 1..5)).prop_map(|(name, attrs, kids)| Node {
            name,
            attrs,
            body: Body::Children(kids),
        })
    })
}

struct Renderer {
    out: String,
    eol: &'static str,
    indent: &'static str,
    spans: Spans,
    next_id: usize,
}

impl Renderer {
    fn render(&mut self, n: &Node, depth: usize) {
        let id = self.next_id;
        self.next_id += 1;
        let pad = self.indent.repeat(depth);
        // A commented lookalike with the same id, in WSO2 style, before every other element.
        if id % 2 == 1 {
            self.out.push_str(&format!(
                "{pad}<!--{} id=\"e{id}\" k=\"fake\">fake</{}-->{}",
                n.name, n.name, self.eol
            ));
        }
        let elem_start = self.out.len() + pad.len();
        self.out.push_str(&format!("{pad}<{} id=\"e{id}\"", n.name));
        let mut last_end = (self.out.len(), '"');
        if depth == 0 {
            self.out.push_str(" xmlns:p='urn:p'");
            last_end = (self.out.len(), '\'');
        }
        self.spans.names.insert(id, n.name.clone());
        for (an, av, q) in &n.attrs {
            self.out.push_str(&format!(" {an}={q}"));
            let start = self.out.len();
            self.out.push_str(&escape_attr(av, *q));
            self.spans
                .attr
                .insert((id, an.clone()), (start..self.out.len(), *q));
            self.spans.attr_value.insert((id, an.clone()), av.clone());
            self.out.push(*q);
            last_end = (self.out.len(), *q);
        }
        self.spans.attr_end.insert(id, last_end);
        match &n.body {
            Body::Leaf {
                text,
                empty_form,
                cdata,
            } => {
                self.spans.leaf_text.insert(id, text.clone());
                if text.is_empty() && *empty_form {
                    let start = self.out.len();
                    self.out.push_str("/>");
                    self.spans.leaf.insert(id, (start..self.out.len(), true));
                } else {
                    self.out.push('>');
                    let start = self.out.len();
                    if *cdata {
                        self.out.push_str(&format!("<![CDATA[{text}]]>"));
                    } else {
                        self.out.push_str(&escape_text(text));
                    }
                    self.spans.leaf.insert(id, (start..self.out.len(), false));
                    self.out.push_str(&format!("</{}>", n.name));
                }
            }
            Body::Children(kids) => {
                self.out.push('>');
                self.out.push_str(self.eol);
                for k in kids {
                    self.render(k, depth + 1);
                }
                self.out.push_str(&format!("{pad}</{}>", n.name));
            }
        }
        self.spans.elem.insert(id, elem_start..self.out.len());
        self.out.push_str(self.eol);
    }
}

#[derive(Debug, Clone)]
enum SetOp {
    Text(usize, String),
    Attr(usize, String, String),
}

/// (target index, is set_text, attribute name, value) before mapping onto the document.
type RawOp = (usize, bool, String, String);

fn doc_and_ops() -> impl Strategy<Value = (Node, bool, bool, Vec<RawOp>)> {
    (
        node(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(
            (
                0usize..1000,
                any::<bool>(),
                prop::sample::select(vec!["k", "v", "n1", "n2"]),
                new_value(),
            )
                .prop_map(|(i, t, a, v)| (i, t, a.to_string(), v)),
            1..8,
        ),
    )
}

fn render(root: &Node, crlf: bool, tabs: bool) -> (String, Spans) {
    let mut r = Renderer {
        out: String::new(),
        eol: if crlf { "\r\n" } else { "\n" },
        indent: if tabs { "\t" } else { "  " },
        spans: Spans::default(),
        next_id: 0,
    };
    r.out.push_str("<?xml version=\"1.0\"?>");
    r.out.push_str(r.eol);
    r.out.push_str("<!-- header & <notes> -->");
    r.out.push_str(r.eol);
    r.render(root, 0);
    (r.out, r.spans)
}

/// The expected text: the original with the final value of each target spliced in.
fn expected(original: &str, spans: &Spans, ops: &[SetOp]) -> String {
    let mut text_final: BTreeMap<usize, String> = BTreeMap::new();
    let mut attr_final: BTreeMap<(usize, String), String> = BTreeMap::new();
    let mut new_attr_order: Vec<(usize, String)> = Vec::new();
    for op in ops {
        match op {
            SetOp::Text(id, v) => {
                text_final.insert(*id, v.clone());
            }
            SetOp::Attr(id, a, v) => {
                let key = (*id, a.clone());
                if !spans.attr.contains_key(&key) && !new_attr_order.contains(&key) {
                    new_attr_order.push(key.clone());
                }
                attr_final.insert(key, v.clone());
            }
        }
    }
    let mut edits: Vec<(Range<usize>, usize, String)> = Vec::new();
    for (id, v) in &text_final {
        let (range, empty_form) = spans.leaf[id].clone();
        if spans.leaf_text[id] == *v {
            continue;
        }
        let new = if empty_form {
            format!(">{}</{}>", escape_text(v), spans.names[id])
        } else {
            escape_text(v)
        };
        edits.push((range, 0, new));
    }
    for (key, v) in &attr_final {
        if let Some((range, q)) = spans.attr.get(key)
            && spans.attr_value[key] != *v
        {
            edits.push((range.clone(), 0, escape_attr(v, *q)));
        }
    }
    for (seq, key) in new_attr_order.iter().enumerate() {
        let (at, q) = spans.attr_end[&key.0];
        let v = &attr_final[key];
        edits.push((
            at..at,
            seq,
            format!(" {}={q}{}{q}", key.1, escape_attr(v, q)),
        ));
    }
    // Insertions at an offset go before a replacement starting there.
    edits.sort_by_key(|(r, seq, _)| (r.start, !r.is_empty(), *seq));
    let mut out = String::new();
    let mut pos = 0;
    for (r, _, t) in edits {
        out.push_str(&original[pos..r.start]);
        out.push_str(&t);
        pos = r.end;
    }
    out.push_str(&original[pos..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_set_ops_change_only_their_spans((root, crlf, tabs, raw_ops) in doc_and_ops()) {
        let (original, spans) = render(&root, crlf, tabs);
        let leaves: Vec<usize> = spans.leaf.keys().copied().collect();
        let all: Vec<usize> = spans.names.keys().copied().collect();
        let mut set_ops = Vec::new();
        let mut ops = Vec::new();
        // One op per target: with two, the sequence (not just the final value) decides the
        // bytes, e.g. `<x/>` set to "0" then "" ends as `<x></x>`.
        let mut targets = std::collections::BTreeSet::new();
        for (i, is_text, attr, value) in raw_ops {
            let id = if is_text { leaves[i % leaves.len()] } else { all[i % all.len()] };
            let attr_key = if is_text { String::new() } else { attr.clone() };
            if !targets.insert((id, attr_key)) {
                continue;
            }
            if is_text {
                ops.push(Op::set_text(format!("//*[@id='e{id}']"), value.clone()));
                set_ops.push(SetOp::Text(id, value));
            } else {
                ops.push(Op::set_attr(format!("//*[@id='e{id}']/@{attr}"), value.clone()));
                set_ops.push(SetOp::Attr(id, attr, value));
            }
        }
        let doc = Document::parse_named("gen.xml", original.as_bytes()).unwrap();
        let patched = doc.apply(&ops).unwrap();
        let got = String::from_utf8(patched.text.clone()).unwrap();
        let want = expected(&original, &spans, &set_ops);
        prop_assert_eq!(&got, &want);

        // The oracle reads back every final value.
        let tree = roxmltree::Document::parse(&got).unwrap();
        let by_id = |id: usize| {
            tree.descendants()
                .find(|n| n.attribute("id") == Some(format!("e{id}").as_str()))
                .unwrap()
        };
        for op in &set_ops {
            let last_wins = |o: &&SetOp| match (o, op) {
                (SetOp::Text(a, _), SetOp::Text(b, _)) => a == b,
                (SetOp::Attr(a, x, _), SetOp::Attr(b, y, _)) => a == b && x == y,
                _ => false,
            };
            let final_op = set_ops.iter().rfind(last_wins).unwrap();
            match final_op {
                SetOp::Text(id, v) => {
                    let n = by_id(*id);
                    let text: String = n.children().filter(|c| c.is_text()).map(|c| c.text().unwrap()).collect();
                    prop_assert_eq!(&text, v);
                }
                SetOp::Attr(id, a, v) => prop_assert_eq!(by_id(*id).attribute(a.as_str()), Some(v.as_str())),
            }
        }

        let again = Document::parse(&patched.text).unwrap().apply(&ops).unwrap();
        prop_assert_eq!(&again.text, &patched.text);
        prop_assert!(!again.changed());
    }

    #[test]
    fn arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), path in "\\PC{0,20}", value in "\\PC{0,8}") {
        exercise(&bytes, &path, &value);
    }

    #[test]
    fn xmlish_input_never_panics(
        tokens in prop::collection::vec(prop::sample::select(TOKENS.to_vec()), 0..40),
        path in prop::collection::vec(prop::sample::select(PATH_TOKENS.to_vec()), 0..8),
        value in "\\PC{0,8}",
    ) {
        exercise(tokens.concat().as_bytes(), &path.concat(), &value);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// ensure / remove / replace_content on a random element: the output differs from the
    /// input in one contiguous region inside that element's lines, roxmltree sees the effect,
    /// and re-applying is a byte-identical no-op.
    #[test]
    fn structural_ops_edit_only_their_element((root, crlf, tabs, _) in doc_and_ops(), pick in 0usize..1000, kind in 0u8..3, value in "[a-z0-9&<> ]{0,8}") {
        let (original, spans) = render(&root, crlf, tabs);
        let ids: Vec<usize> = spans.names.keys().copied().collect();
        let id = ids[pick % ids.len()];
        let path = format!("//*[@id='e{id}']");
        let op = match kind {
            0 => Op::ensure(&path, "added[@k='new']", format!("<added k='new'>\n  <v>{}</v>\n</added>", escape_text(&value))),
            1 => Op::remove(&path),
            _ => Op::replace_content(&path, format!("<r1>{}</r1>\n<r2/>", escape_text(&value))),
        };
        let doc = Document::parse(original.as_bytes()).unwrap();
        let result = doc.apply(std::slice::from_ref(&op));
        if kind == 1 && id == 0 {
            prop_assert!(result.is_err(), "removing the root is refused");
            return Ok(());
        }
        let patched = result.unwrap();
        let out = String::from_utf8(patched.text.clone()).unwrap();

        // Everything before the element's first line and after its last line is untouched.
        let span = spans.elem[&id].clone();
        let line_start = original[..span.start].rfind('\n').map_or(0, |p| p + 1);
        let line_end = original[span.end..].find('\n').map_or(original.len(), |p| span.end + p + 1);
        prop_assert!(out.starts_with(&original[..line_start]), "bytes before the element changed");
        prop_assert!(out.ends_with(&original[line_end..]), "bytes after the element changed");
        prop_assert!(out.len() >= line_start + (original.len() - line_end));
        if kind == 1 {
            // The element goes with its line (it stands alone on it in generated documents).
            prop_assert_eq!(&out, &format!("{}{}", &original[..line_start], &original[line_end..]));
        }

        let tree = roxmltree::Document::parse(&out).unwrap();
        let target = tree.descendants().find(|e| e.attribute("id") == Some(format!("e{id}").as_str()));
        let kids = |e: roxmltree::Node| e.children().filter(|c| c.is_element()).map(|c| c.tag_name().name().to_string()).collect::<Vec<_>>();
        match kind {
            0 => {
                let t = target.unwrap();
                let added: Vec<_> = t.children().filter(|c| c.has_tag_name("added")).collect();
                prop_assert_eq!(added.len(), 1);
                prop_assert_eq!(added[0].children().find(|c| c.has_tag_name("v")).unwrap().text().unwrap_or(""), value.as_str());
            }
            1 => prop_assert!(target.is_none()),
            _ => prop_assert_eq!(kids(target.unwrap()), ["r1", "r2"]),
        }

        let again = Document::parse(&patched.text).unwrap().apply(std::slice::from_ref(&op)).unwrap();
        prop_assert_eq!(&again.text, &patched.text);
        prop_assert!(!again.changed());
    }
}

const TOKENS: &[&str] = &[
    "<a>",
    "</a>",
    "<b x='1'>",
    "</b>",
    "<a/>",
    "<b y=\"2\" />",
    "<!--",
    "-->",
    "<!--a>x</a-->",
    "<![CDATA[",
    "]]>",
    "&amp;",
    "&#x41;",
    "&#0;",
    "&bogus;",
    "&",
    "<?pi x?>",
    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
    "<!DOCTYPE a>",
    " ",
    "\r\n",
    "\n",
    "\t",
    "text",
    "é",
    "\u{feff}",
    "<",
    ">",
    "=",
    "'",
    "\"",
    "/",
    "<p:q xmlns:p='u'>",
    "</p:q>",
    "<c\n  enable=\"false\">",
    "</c>",
];

const PATH_TOKENS: &[&str] = &[
    "/", "//", "a", "b", "*", "[", "]", "@x", "='1'", "[x='1']", "[.='t']", "/@y", "p:q", "'", "c",
];

/// Parses and patches; must return (Ok or Err) without panicking, and an Ok parse must
/// round-trip its bytes.
fn exercise(bytes: &[u8], path: &str, value: &str) {
    let Ok(doc) = Document::parse(bytes) else {
        return;
    };
    assert_eq!(doc.to_bytes(), bytes);
    let _ = doc.get_text(path);
    let _ = doc.get_attr(path);
    let ops = [
        Op::set_text(path, value).with_count(Count::Any),
        Op::set_attr(format!("{path}/@z"), value).with_count(Count::Any),
        Op::ensure(
            path,
            "n[@k='v']",
            format!("<n k='v'>{}</n>", escape_text(value)),
        )
        .with_count(Count::Any),
        Op::replace_content(path, "<m/>\n<m/>").with_count(Count::Any),
        Op::remove(path).with_count(Count::Any),
    ];
    for op in &ops {
        if let Ok(p) = doc.apply(std::slice::from_ref(op)) {
            Document::parse(&p.text).expect("a successful patch yields a parsable document");
        }
    }
}
