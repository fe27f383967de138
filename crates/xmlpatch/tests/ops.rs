//! Behaviour of each operation on small inline documents: exact output bytes, no-op on
//! re-apply, and the errors a caller sees.

use apim_xmlpatch::{Count, Document, IfPresent, Op, Position, XmlError};

fn patch(doc: &str, ops: &[Op]) -> String {
    let d = Document::parse_named("t.xml", doc.as_bytes()).unwrap();
    let p = d.apply(ops).unwrap();
    let out = String::from_utf8(p.text.clone()).unwrap();
    let again = Document::parse_named("t.xml", out.as_bytes())
        .unwrap()
        .apply(ops)
        .unwrap();
    assert_eq!(
        again.text,
        out.as_bytes(),
        "re-applying must be a byte-identical no-op"
    );
    assert!(
        !again.changed(),
        "re-applying must report no change: {:?}",
        again.changes
    );
    out
}

fn patch_err(doc: &str, ops: &[Op]) -> XmlError {
    Document::parse_named("t.xml", doc.as_bytes())
        .unwrap()
        .apply(ops)
        .unwrap_err()
}

#[test]
fn set_text_replaces_only_the_value_and_escapes_it() {
    let doc = "<c>\n  <url>jdbc:h2:x</url>\n</c>";
    let out = patch(
        doc,
        &[Op::set_text(
            "/c/url",
            "jdbc:mysql://db/x?autoReconnect=true&useSSL=false",
        )],
    );
    assert_eq!(
        out,
        "<c>\n  <url>jdbc:mysql://db/x?autoReconnect=true&amp;useSSL=false</url>\n</c>"
    );
}

#[test]
fn set_text_on_empty_element_opens_it() {
    assert_eq!(
        patch("<a><b x='1' /></a>", &[Op::set_text("/a/b", "v")]),
        "<a><b x='1'>v</b></a>"
    );
    assert_eq!(
        patch("<a><b/></a>", &[Op::set_text("/a/b", "")]),
        "<a><b/></a>"
    );
}

#[test]
fn set_text_equal_value_is_a_noop_even_when_written_differently() {
    let d = Document::parse(b"<a><b>x&#38;y</b><c><![CDATA[1<2]]></c></a>").unwrap();
    let p = d
        .apply(&[Op::set_text("/a/b", "x&y"), Op::set_text("/a/c", "1<2")])
        .unwrap();
    assert!(!p.changed());
    assert_eq!(p.text, d.to_bytes());
}

#[test]
fn set_text_refuses_elements_with_children() {
    let err = patch_err("<a><b><c/></b></a>", &[Op::set_text("/a/b", "x")]);
    assert!(
        matches!(err, XmlError::NotApplicable { op: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("replace_content"), "{err}");
}

#[test]
fn set_attr_changes_value_keeping_quotes_and_order() {
    let doc = "<a>\n  <clustering class='X'\n     enable = \"false\" >\n  </clustering>\n</a>";
    let out = patch(doc, &[Op::set_attr("/a/clustering/@enable", "true")]);
    assert_eq!(out, doc.replace("\"false\"", "\"true\""));
}

#[test]
fn set_attr_adds_a_missing_attribute_after_the_last_one() {
    assert_eq!(
        patch("<a><b x='1'/></a>", &[Op::set_attr("/a/b/@y", "it's")]),
        "<a><b x='1' y='it&apos;s'/></a>"
    );
    assert_eq!(
        patch("<a><b/></a>", &[Op::set_attr("/a/b/@y", "\"q\"")]),
        "<a><b y=\"&quot;q&quot;\"/></a>"
    );
}

#[test]
fn count_mismatch_names_file_path_and_deepest_match() {
    let doc = "<r><ds><d><name>A</name></d><d><name>B</name></d></ds></r>";
    let err = patch_err(doc, &[Op::set_text("/r/ds/d[name='C']/name", "x")]);
    assert_eq!(
        err.to_string(),
        "t.xml: op #1: path /r/ds/d[name='C']/name expected exactly one element, found 0; \
         deepest match: /r/ds (1 elements); 2 <d> there but none satisfies [name='C']"
    );
    let err = patch_err(doc, &[Op::set_text("/r/ds/d/name", "x")]);
    assert!(
        matches!(err, XmlError::CountMismatch { found: 2, .. }),
        "{err}"
    );
    let out = patch(
        doc,
        &[Op::set_text("/r/ds/d/name", "x").with_count(Count::Any)],
    );
    assert_eq!(
        out,
        "<r><ds><d><name>x</name></d><d><name>x</name></d></ds></r>"
    );
}

#[test]
fn a_failing_op_leaves_nothing_changed() {
    let d = Document::parse(b"<a><b>1</b></a>").unwrap();
    assert!(
        d.apply(&[Op::set_text("/a/b", "2"), Op::set_text("/a/zz", "3")])
            .is_err()
    );
    assert_eq!(d.to_bytes(), b"<a><b>1</b></a>");
}

#[test]
fn later_ops_see_earlier_results() {
    let doc = "<r>\n  <d>\n    <name>A</name>\n  </d>\n</r>";
    let out = patch(
        doc,
        &[
            Op::set_text("/r/d/name", "B"),
            Op::set_text("/r/d[name='B']/name", "B"),
        ],
    );
    assert_eq!(out, doc.replace(">A<", ">B<"));
}

#[test]
fn value_ops_on_the_same_element_compose_like_sequential_edits() {
    // New attribute set twice, a second new attribute, then text on an empty element.
    let ops = [
        Op::set_attr("/a/b/@n", "1"),
        Op::set_attr("/a/b/@n", "2"),
        Op::set_attr("/a/b/@m", "3"),
        Op::set_text("/a/b", "t"),
        Op::set_attr("/a/b/@o", "4"),
        Op::set_text("/a/b[@n='2'][@m='3']", "u"),
    ];
    assert_eq!(
        patch("<a>\n  <b x='0' />\n</a>", &ops),
        "<a>\n  <b x='0' n='2' m='3' o='4'>u</b>\n</a>"
    );
}

#[test]
fn ensure_inserts_last_with_sibling_indentation_in_the_file_unit() {
    let doc = "<r>\n    <ds>\n        <d><name>A</name></d>\n        <!--d><name>S</name></d-->\n    </ds>\n</r>\n";
    let frag = "<d>\n  <name>B</name>\n  <url>u</url>\n</d>";
    let out = patch(doc, &[Op::ensure("/r/ds", "d[name='B']", frag)]);
    assert_eq!(
        out,
        "<r>\n    <ds>\n        <d><name>A</name></d>\n        <d>\n            <name>B</name>\n            <url>u</url>\n        </d>\n        <!--d><name>S</name></d-->\n    </ds>\n</r>\n"
    );
}

#[test]
fn ensure_positions_first_after_and_before() {
    let doc = "<r>\n\t<a/>\n\t<b/>\n</r>";
    assert_eq!(
        patch(doc, &[Op::ensure("/r", "n", "<n/>").at(Position::First)]),
        "<r>\n\t<n/>\n\t<a/>\n\t<b/>\n</r>"
    );
    assert_eq!(
        patch(
            doc,
            &[Op::ensure("/r", "n", "<n/>").at(Position::After("a".into()))]
        ),
        "<r>\n\t<a/>\n\t<n/>\n\t<b/>\n</r>"
    );
    assert_eq!(
        patch(
            doc,
            &[Op::ensure("/r", "n", "<n/>").at(Position::Before("b".into()))]
        ),
        "<r>\n\t<a/>\n\t<n/>\n\t<b/>\n</r>"
    );
}

#[test]
fn ensure_into_childless_parent_uses_detected_indent_unit() {
    assert_eq!(
        patch("<r>\n  <m/>\n</r>", &[Op::ensure("/r/m", "x", "<x>1</x>")]),
        "<r>\n  <m>\n    <x>1</x>\n  </m>\n</r>"
    );
    assert_eq!(
        patch(
            "<r>\n  <m>\n  </m>\n</r>",
            &[Op::ensure("/r/m", "x", "<x>1</x>")]
        ),
        "<r>\n  <m>\n    <x>1</x>\n  </m>\n</r>"
    );
}

#[test]
fn ensure_replaces_a_different_existing_element_and_keeps_an_equal_one() {
    let doc = "<r>\n  <mount path=\"/c\" overwrite=\"true\">\n    <target>/old</target>\n  </mount>\n</r>";
    let frag = "<mount path=\"/c\" overwrite=\"true\">\n  <target>/new</target>\n</mount>";
    let out = patch(doc, &[Op::ensure("/r", "mount[@path='/c']", frag)]);
    assert_eq!(out, doc.replace("/old", "/new"));
    // Same content, different formatting: left alone.
    let same = "<mount overwrite='true' path='/c'><target>/old</target></mount>";
    let d = Document::parse(doc.as_bytes()).unwrap();
    assert!(
        !d.apply(&[Op::ensure("/r", "mount[@path='/c']", same)])
            .unwrap()
            .changed()
    );
    let keep = Op::Ensure {
        parent: "/r".into(),
        key: "mount[@path='/c']".into(),
        fragment: frag.into(),
        position: Position::Last,
        if_present: IfPresent::Keep,
        count: None,
    };
    assert!(!d.apply(&[keep]).unwrap().changed());
}

#[test]
fn ensure_rejects_a_fragment_that_does_not_match_its_key() {
    let err = patch_err(
        "<r/>",
        &[Op::ensure("/r", "d[name='A']", "<d><name>B</name></d>")],
    );
    assert!(matches!(err, XmlError::BadFragment { .. }), "{err}");
    let err = patch_err("<r/>", &[Op::ensure("/r", "d", "<d><x></d>")]);
    assert!(err.to_string().contains("line 1, column"), "{err}");
    let err = patch_err(
        "<r/>",
        &[Op::ensure("/r", "d", "<?xml version='1.0'?><d/>")],
    );
    assert!(err.to_string().contains("XML declaration"), "{err}");
}

#[test]
fn replace_content_replaces_a_block_instead_of_appending() {
    let doc = "<c>\n    <members>\n        <member>\n            <host>127.0.0.1</host>\n        </member>\n    </members>\n</c>";
    let content = "<member>\n    <host>10.0.0.1</host>\n</member>\n<member>\n    <host>10.0.0.2</host>\n</member>";
    let out = patch(doc, &[Op::replace_content("/c/members", content)]);
    assert_eq!(
        out,
        "<c>\n    <members>\n        <member>\n            <host>10.0.0.1</host>\n        </member>\n        <member>\n            <host>10.0.0.2</host>\n        </member>\n    </members>\n</c>"
    );
}

#[test]
fn remove_takes_the_whole_line_when_alone() {
    assert_eq!(
        patch("<r>\n  <a/>\n  <b>1</b>\n</r>", &[Op::remove("/r/b")]),
        "<r>\n  <a/>\n</r>"
    );
    assert_eq!(
        patch("<r><a/><b>1</b></r>", &[Op::remove("/r/a")]),
        "<r><b>1</b></r>"
    );
    // Already gone: fine by default (at_most_one).
    assert_eq!(patch("<r/>", &[Op::remove("/r/a")]), "<r/>");
    assert!(
        patch_err("<r/>", &[Op::remove("/r")])
            .to_string()
            .contains("root")
    );
}

#[test]
fn ops_deserialize_from_playbook_toml() {
    #[derive(serde::Deserialize)]
    struct File {
        ops: Vec<Op>,
    }
    let f: File = toml::from_str(
        r#"
        [[ops]]
        op = "set_text"
        path = "/Server/Ports/Offset"
        value = "1"

        [[ops]]
        op = "set_attr"
        path = "/axisconfig/clustering/@enable"
        value = "true"
        count = "at_least_one"

        [[ops]]
        op = "ensure"
        parent = "/wso2registry"
        key = "mount[@path='/_system/config']"
        fragment = "<mount path='/_system/config'/>"
        position = { after = "dbConfig[@name='wso2registry']" }

        [[ops]]
        op = "remove"
        path = "//x"
        "#,
    )
    .unwrap();
    assert_eq!(f.ops[0], Op::set_text("/Server/Ports/Offset", "1"));
    assert_eq!(f.ops[1].expected(), Count::AtLeastOne);
    assert!(
        matches!(&f.ops[2], Op::Ensure { position: Position::After(s), .. } if s == "dbConfig[@name='wso2registry']")
    );
    assert_eq!(f.ops[3].expected(), Count::AtMostOne);
    let bad = toml::from_str::<File>(
        "[[ops]]\nop = \"set_text\"\npath = \"/a\"\nvalue = \"1\"\nvalu = \"2\"\n",
    );
    assert!(bad.is_err(), "unknown fields are rejected");
}

#[test]
fn read_api_probes_values() {
    let d = Document::parse(b"<a xmlns='urn:q'><b k='v'>t</b><b>u</b></a>").unwrap();
    assert_eq!(d.get_text("/a/b[@k='v']").unwrap(), "t");
    assert_eq!(d.get_attr("/a/b[.='t']/@k").unwrap().as_deref(), Some("v"));
    assert_eq!(d.get_attr("/a/b[.='u']/@k").unwrap(), None);
    assert_eq!(d.get_all_text("//b").unwrap(), ["t", "u"]);
    assert_eq!(d.count("//c").unwrap(), 0);
    assert!(matches!(
        d.get_text("/a/b"),
        Err(XmlError::QueryMismatch { found: 2, .. })
    ));
}

#[test]
fn a_secret_ops_value_and_the_value_it_replaced_are_named_for_masking() {
    let d = Document::parse_named(
        "u.xml",
        b"<u>\n  <Password>admin</Password>\n  <User>admin</User>\n</u>\n",
    )
    .unwrap();
    let p = d
        .apply(&[Op::set_text("/u/Password", "s3cr&t").secret()])
        .unwrap();
    assert_eq!(p.secrets(), ["s3cr&t", "admin"]);
    let plain = d.apply(&[Op::set_text("/u/Password", "s3cr&t")]).unwrap();
    assert!(plain.secrets().is_empty(), "{:?}", plain.secrets());
}

#[test]
fn set_attr_requires_an_attribute_path_even_when_nothing_matches() {
    let err = patch_err("<a/>", &[Op::set_attr("//zz", "1").with_count(Count::Any)]);
    assert!(matches!(err, XmlError::PathSyntax { .. }), "{err}");
}

#[test]
fn debug_output_never_shows_secrets_or_file_text() {
    let d = Document::parse_named("u.xml", b"<u><Password>old-pw</Password></u>").unwrap();
    let op = Op::set_text("/u/Password", "new-pw").secret();
    let p = d.apply(std::slice::from_ref(&op)).unwrap();
    let shown = format!("{op:?} {d:?} {p:?}");
    assert!(
        !shown.contains("new-pw") && !shown.contains("old-pw"),
        "{shown}"
    );
    assert!(shown.contains("********"), "{shown}");
}

#[test]
fn characters_xml_forbids_are_refused() {
    let err = patch_err("<a><b/></a>", &[Op::set_text("/a/b", "bell\u{7}")]);
    assert_eq!(
        err.to_string(),
        "t.xml: op #1 at /a/b: character '\\u{7}' (U+0007) cannot be written in XML 1.0; the file was left untouched"
    );
}

#[test]
fn malformed_xml_reports_line_and_column() {
    let err = Document::parse_named("bad.xml", b"<a>\n  <b>\n  </c>\n</a>").unwrap_err();
    assert!(
        err.to_string().starts_with("bad.xml:3:3: malformed XML"),
        "{err}"
    );
}
