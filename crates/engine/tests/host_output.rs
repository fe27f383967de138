//! No panic on anything a host sends: the probe's framing and every module's decision
//! over probed facts return a value or an error for any bytes.
//!
//! A host is not trusted to be well-behaved: a broken shell profile, a full disk, a
//! different coreutils or a hostile machine can put anything on stdout. A panic there
//! would take down the whole run (every host), not just report that host.
//!
//! * `probe_parse_*`: arbitrary bytes, valid frames mutated (cut, bytes changed, bytes
//!   inserted, lengths replaced), and valid frames read back exactly.
//! * `modules_decide_on_any_answer`: each module's decision with arbitrary answers to
//!   each of its questions.
//! * The cases these found are regular regression tests below.

use apim_engine::modules::{self, TaskCtx};
use apim_engine::probe::{self, Answer, Fact, Facts, FileStat};
use apim_engine::redact::Redactor;
use apim_engine::state::HostState;
use apim_transport::FileKind;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Generators

/// Bytes a host might send: mostly text with the characters the parsers split on, some
/// multi-byte UTF-8 (where a byte index can fall inside a character), some invalid.
fn host_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => "[a-f0-9]{0,16}".prop_map(String::into_bytes),
        2 => prop::sample::select(vec![
            "\t", "\n", " ", "=", "@", ":", "@@", "S", "T", "G", "M", "D", "C", "F", "B", "E",
            "running ", "é", "€", "\u{fffd}", "🦀", "-1", "18446744073709551616", "0",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..max).prop_map(|v| v.concat())
}

fn question() -> impl Strategy<Value = Fact> {
    prop_oneof![
        "/[a-z]{1,6}".prop_map(Fact::File),
        "/[a-z]{1,6}".prop_map(Fact::Sha256),
        "[a-z ]{1,12}".prop_map(Fact::Shell),
        "/[a-z]{1,6}".prop_map(Fact::Attrs),
    ]
}

/// An owner, group and mode as `stat` reports them for a regular file.
fn file_stat() -> impl Strategy<Value = FileStat> {
    (
        0u32..0o10000,
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<i64>(),
        "[a-z_][a-z0-9_-]{0,8}|UNKNOWN",
        "[a-z_][a-z0-9_-]{0,8}|UNKNOWN",
    )
        .prop_map(|(mode, size, uid, gid, mtime, user, group)| FileStat {
            kind: FileKind::File,
            size,
            mode,
            uid,
            gid,
            user,
            group,
            mtime,
        })
}

/// An answer of the right kind for `q`.
fn answer_for(q: &Fact) -> BoxedStrategy<Answer> {
    match q {
        Fact::File(_) => prop_oneof![
            Just(Answer::Missing),
            host_bytes(12).prop_map(Answer::Bytes)
        ]
        .boxed(),
        Fact::Sha256(_) => prop_oneof![
            Just(Answer::Missing),
            host_bytes(6).prop_map(|b| Answer::Digest(String::from_utf8_lossy(&b).into_owned()))
        ]
        .boxed(),
        Fact::Shell(_) => (any::<i32>(), host_bytes(12))
            .prop_map(|(rc, stdout)| Answer::Output { rc, stdout })
            .boxed(),
        Fact::Attrs(_) => {
            prop_oneof![Just(Answer::Missing), file_stat().prop_map(Answer::Attrs)].boxed()
        }
    }
}

/// Questions with an answer each.
fn answered() -> impl Strategy<Value = Vec<(Fact, Answer)>> {
    prop::collection::btree_set(question(), 0..6).prop_flat_map(|qs| {
        qs.into_iter()
            .map(|q| answer_for(&q).prop_map(move |a| (q.clone(), a)))
            .collect::<Vec<_>>()
    })
}

/// What the probe script prints for these answers: single answers in question order,
/// then the owners and modes found, in one batch, then the files found, in one batch.
fn frame(answers: &[(Fact, Answer)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut stats = Vec::new();
    for (i, (_, a)) in answers.iter().enumerate() {
        match a {
            Answer::Missing => out.extend(format!("@@{i} M 0\n").into_bytes()),
            Answer::Bytes(b) => batch.push((i, b)),
            Answer::Digest(d) => {
                out.extend(format!("@@{i} D {}\n{d}", d.len()).into_bytes());
            }
            Answer::Output { rc, stdout } => {
                out.extend(format!("@@{i} C {} {rc}\n", stdout.len()).into_bytes());
                out.extend_from_slice(stdout);
            }
            Answer::Attrs(st) => stats.push((i, st)),
        }
    }
    if !stats.is_empty() {
        let lines: String = stats
            .iter()
            .map(|(_, st)| {
                format!(
                    "{:x} {} {} {} {} {} {}\n",
                    0o100000 | st.mode,
                    st.size,
                    st.uid,
                    st.gid,
                    st.mtime,
                    st.user,
                    st.group
                )
            })
            .collect();
        let indices: Vec<String> = stats.iter().map(|(i, _)| i.to_string()).collect();
        out.extend(format!("@@S {} {}\n{lines}", lines.len(), indices.join(" ")).into_bytes());
    }
    if !batch.is_empty() {
        let total: usize = batch.iter().map(|(_, b)| b.len()).sum();
        let items: String = batch
            .iter()
            .map(|(i, b)| format!(" {i}:{}", b.len()))
            .collect();
        out.extend(format!("@@B {total}{items}\n").into_bytes());
        for (_, b) in &batch {
            out.extend_from_slice(b);
        }
        out.extend_from_slice(b"@@E 0\n");
    }
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Cut(usize),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    /// Replaces the first run of digits at or after the offset (a length, an index).
    Number(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Cut),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Set(at, b)),
        (any::<usize>(), host_bytes(3)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (
            any::<usize>(),
            prop::sample::select(vec!["", "0", "1", "99999999", "18446744073709551615", "-3"])
        )
            .prop_map(|(at, n)| Mutation::Number(at, n.to_string())),
    ]
}

fn mutate(mut out: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let at = |i: usize| {
            if out.is_empty() {
                0
            } else {
                i % (out.len() + 1)
            }
        };
        match m {
            Mutation::Cut(i) => out.truncate(at(*i)),
            Mutation::Set(i, b) => {
                if !out.is_empty() {
                    let i = i % out.len();
                    out[i] = *b;
                }
            }
            Mutation::Insert(i, bytes) => {
                let i = at(*i);
                out.splice(i..i, bytes.iter().copied());
            }
            Mutation::Number(i, n) => {
                let from = at(*i);
                if let Some(start) = out[from..].iter().position(u8::is_ascii_digit) {
                    let start = from + start;
                    let len = out[start..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    out.splice(start..start + len, n.bytes());
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Modules over probed facts

/// Each module with parameters that reach its parsing of the host's answers.
const MODULE_PARAMS: &[(&str, &str)] = &[
    (
        "service",
        "dir = '/opt/app'\nuser = 'svc'\nstart = ['bin/run', 'start']\nstop = ['bin/run', 'stop']\n\
         pid_file = '/opt/app/app.pid'\nlog = '/opt/app/logs/app.log'\n\
         process_markers = ['-Dapp.home=/opt/app']\nready = 'started'\nhealth_port = 9443\n\
         ports = [9443, 8080]\nenv = { EXTRA = 'x' }\n\
         java = { home = '', versions = ['1.7', '1.8'], login_user = 'svc' }",
    ),
    ("java", "home = '/opt/jdk'\nversions = ['1.7', '1.8']"),
    (
        "copy",
        "src = '/ctl/app.zip'\nsha256 = 'abcdef0123456789'\ndest = '/opt/app.zip'",
    ),
    (
        "copy",
        "src = '/ctl/app.zip'\nsha256 = 'abcdef0123456789'\ndest = '/opt/app.zip'\n\
         digest_cache = '/opt/.app.zip.sha256'\nurl = 'https://mirror/app.zip'",
    ),
    (
        "copy",
        "src = '/ctl/app.jar'\nsha256 = 'abcdef0123456789'\ndest = '/opt/app.jar'\n\
         owner = 'svc'\ngroup = 'svc'\nmode = '0644'",
    ),
    (
        "hosts_file",
        "marker = 'cluster'\nentries = [{ address = '10.0.0.9', names = ['db'] }]\n\
         owner = 'root'\ngroup = 'root'\nmode = '0644'",
    ),
    (
        "xml",
        "file = '/opt/app/conf/db.xml'\nowner = 'svc'\ngroup = 'svc'\nmode = '0600'\n\
         ops = [{ op = 'set_text', path = '/Db/Password', value = 'pw', secret = true }]",
    ),
    (
        "hosts_file",
        "marker = 'cluster'\nentries = [{ address = '10.0.0.9', names = ['db', 'db.example'] }]",
    ),
    (
        "mysql",
        "admin_user = 'root'\nadmin_password = 'pw'\n\
         databases = [{ name = 'appdb', script = 's.sql', sentinel = 'ORDERS' },\n\
                      { name = 'userdb', script = 'u.sql', sentinel = 'USERS' }]",
    ),
    (
        "mysql_account",
        "admin_user = 'root'\nadmin_password = 'pw'\nuser = 'app'\npassword = 'q'\n\
         grants = [{ database = 'appdb', hosts = ['10.0.0.%', '10.0.0.1'] }]",
    ),
    (
        "mysql_stored_password",
        "admin_user = 'root'\nadmin_password = 'pw'\ndatabase = 'users'\ntable = 'U'\n\
         user_column = 'NAME'\nuser = 'admin'\npassword_column = 'PW'\nsalt_column = 'SALT'\n\
         filters = { TENANT = -1 }\npassword = 'q'",
    ),
    (
        "unpack",
        "archive = '/opt/app.zip'\nsha256 = 'abcdef0123456789'\ntop = 'app-1.0'\ndest = '/opt/app'",
    ),
    ("user", "name = 'svc'\nhome = '/home/svc'"),
    (
        "xml",
        "file = '/opt/app/conf/server.xml'\n\
         ops = [{ op = 'set_text', path = '/Server/Port', value = '9444' },\n\
                { op = 'set_attr', path = '/Server/@name', value = 'n1' }]",
    ),
];

/// Decides `module` against a host that answered `answers` to its questions (in order).
fn decide(module: &str, params: &str, answers: &[Answer]) -> Result<String, String> {
    let module: modules::Kind = module.parse().unwrap();
    let params: toml::Table = params.parse().unwrap();
    let questions = modules::questions(module, &params).unwrap();
    let mut facts = Facts::default();
    for (q, a) in questions.iter().zip(answers) {
        facts.insert(q.clone(), a.clone());
    }
    let mut redactor = Redactor::new();
    redactor.add("pw");
    let ctx = TaskCtx {
        params: &params,
        archive: None,
        redactor: &redactor,
    };
    let mut state = HostState::new(facts);
    let decided = if module.is_service() {
        // The planner decides a start, with what changed on the node earlier.
        let p: modules::service::Params = modules::params(module, &params).unwrap();
        modules::service::decide_with(&p, &state, &["a config file".to_string()])
    } else {
        modules::decide(module, &ctx, &mut state)
    };
    decided.map(|d| format!("{d:?}")).map_err(|e| e.to_string())
}

/// Any answer at all, of any kind (a module must not trust the kind either).
fn any_answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        Just(Answer::Missing),
        host_bytes(24).prop_map(Answer::Bytes),
        host_bytes(24).prop_map(|b| Answer::Digest(String::from_utf8_lossy(&b).into_owned())),
        (any::<i32>(), host_bytes(24)).prop_map(|(rc, stdout)| Answer::Output { rc, stdout }),
        (0..4i32, mysql_rows()).prop_map(|(rc, stdout)| Answer::Output { rc, stdout }),
        xmlish().prop_map(Answer::Bytes),
        digest_like().prop_map(Answer::Digest),
        (0..4i32, digest_like()).prop_map(|(rc, d)| Answer::Output {
            rc,
            stdout: d.into_bytes()
        }),
        digest_like().prop_map(|d| Answer::Bytes(d.into_bytes())),
        file_stat().prop_map(Answer::Attrs),
    ]
}

/// Hex with one odd character somewhere in the first bytes: where code that shortens
/// a digest for display cuts it.
fn digest_like() -> impl Strategy<Value = String> {
    (
        "[0-9a-f]{0,14}",
        prop::sample::select(vec!["", "é", "€", "🦀", "\u{fffd}", "\n", " "]),
        "[0-9a-f]{0,50}",
    )
        .prop_map(|(a, odd, b)| format!("{a}{odd}{b}"))
}

/// Rows shaped like the mysql probe's (`S|T|G|L \t name \t name`), with odd cells.
fn mysql_rows() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        "[a-z@%.]{0,6}",
        Just("app@10.0.0.%".to_string()),
        Just("é€".into())
    ];
    let row = (
        prop::sample::select(vec!["S", "T", "G", "L", "X", ""]),
        cell.clone(),
        cell,
    )
        .prop_map(|(k, a, b)| format!("{k}\t{a}\t{b}"));
    prop::collection::vec(row, 0..6).prop_map(|rows| rows.join("\n").into_bytes())
}

/// Token soup close to an XML config file.
fn xmlish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "<Server>",
        "</Server>",
        "<Port>",
        "</Port>",
        "9443",
        "<Server name='x'>",
        "<!--",
        "-->",
        "<?xml version='1.0' encoding='ISO-8859-1'?>",
        "\n",
        " ",
        "é",
        "&amp;",
        "<![CDATA[",
        "]]>",
    ]);
    prop::collection::vec(token, 0..16).prop_map(|t| t.concat().into_bytes())
}

// ---------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn probe_parse_never_panics_on_arbitrary_bytes(
        questions in prop::collection::vec(question(), 0..5),
        out in prop_oneof![prop::collection::vec(any::<u8>(), 0..200), host_bytes(40)],
    ) {
        let _ = probe::parse(&questions, &out);
    }

    #[test]
    fn probe_parse_never_panics_on_mutated_frames(
        answers in answered(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let questions: Vec<Fact> = answers.iter().map(|(q, _)| q.clone()).collect();
        let _ = probe::parse(&questions, &mutate(frame(&answers), &mutations));
    }

    #[test]
    fn probe_parse_reads_valid_frames_back_exactly(answers in answered()) {
        let questions: Vec<Fact> = answers.iter().map(|(q, _)| q.clone()).collect();
        let facts = probe::parse(&questions, &frame(&answers)).unwrap();
        for (q, a) in &answers {
            prop_assert_eq!(facts.get(q), Some(a));
        }
    }

}

proptest! {
    // More cases: nine parameter sets, and the odd character must land where a
    // digest is shortened.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn modules_decide_on_any_answer(
        which in 0..MODULE_PARAMS.len(),
        answers in prop::collection::vec(any_answer(), 0..5),
    ) {
        let (module, params) = MODULE_PARAMS[which];
        let _ = decide(module, params, &answers);
    }
}

// ---------------------------------------------------------------------------------------
// Regressions: cases the properties found

#[test]
fn a_digest_with_a_multibyte_character_at_its_twelfth_byte_is_shown_not_sliced() {
    // should: a host's digest is cut by characters for display; a byte slice at 12
    // panicked when byte 12 fell inside `€`.
    let odd = "abcdefghijk€rest";
    let (module, params) = MODULE_PARAMS[2];
    let verdict = decide(module, params, &[Answer::Digest(odd.into())]).unwrap();
    assert!(
        verdict.contains("has sha256 abcdefghijk€, want"),
        "{verdict}"
    );
    let (module, params) = MODULE_PARAMS[3];
    let cached = Answer::Output {
        rc: 0,
        stdout: odd.as_bytes().to_vec(),
    };
    assert!(decide(module, params, &[cached]).is_ok());
    assert_eq!(apim_engine::report::short_digest("é"), "é");
    assert_eq!(
        apim_engine::report::short_digest(&"ab".repeat(32)),
        "abababababab"
    );
}
