//! The checks that need the whole parsed file: unique host names and addresses, sane
//! role lists, the roles every deployment needs, the one database host, artifact sources
//! and option combinations. Each returns every problem it finds, so one run reports them
//! all; value syntax was already enforced while parsing (see `values`).

use std::collections::HashMap;

use super::*;

impl Inventory {
    /// Every check that needs only the parsed file.
    pub(super) fn semantic_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        problems.extend(self.duplicate_problems());
        for host in &self.hosts {
            problems.extend(host_problems(host));
        }
        problems.extend(self.missing_role_problems());
        problems.extend(self.database_host_problems());
        problems.extend(artifact_problems(
            "distribution",
            &self.distribution,
            self.origin.text.as_ref(),
        ));
        problems.extend(artifact_problems(
            "jdbc_driver",
            &self.jdbc_driver,
            self.origin.text.as_ref(),
        ));
        if let Some(java) = &self.java {
            problems.extend(artifact_problems("java", java, self.origin.text.as_ref()));
            if self.install.java_home.is_some() {
                let text: &str = self.origin.text.as_ref();
                let span = text
                    .find("java_home")
                    .map_or(0..0, |s| s..s + "java_home".len());
                problems.push(
                    Problem::new(
                        ProblemKind::BadOption,
                        "[install] java_home and [java] both choose the JDK",
                        span,
                    )
                    .label("a second JDK")
                    .help(
                        "keep one: [java] installs a JDK archive and uses it; java_home names a \
                         JDK already on the hosts",
                    ),
                );
            }
        }
        problems.extend(self.option_problems());
        problems
    }

    fn duplicate_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut names: HashMap<&HostName, &Host> = HashMap::new();
        let mut addresses: HashMap<&Address, &Host> = HashMap::new();
        for host in &self.hosts {
            if let Some(first) = names.insert(host.name(), host) {
                let (line, _) = self.origin.line_col(first.name.span().start);
                problems.push(
                    Problem::new(
                        ProblemKind::DuplicateHostName,
                        format!("duplicate host name `{}`", host.name()),
                        host.name.span(),
                    )
                    .label("used again here")
                    .help(format!(
                        "host names must be unique; `{}` is first used on line {line}",
                        host.name()
                    )),
                );
            }
            if let Some(first) = addresses.insert(host.address(), host) {
                let (line, _) = self.origin.line_col(first.address.span().start);
                problems.push(
                    Problem::new(
                        ProblemKind::DuplicateAddress,
                        format!(
                            "duplicate address `{}` (hosts `{}` and `{}`)",
                            host.address(),
                            first.name(),
                            host.name()
                        ),
                        host.address.span(),
                    )
                    .label("used again here")
                    .help(format!(
                        "each host needs its own address; put several roles on one host instead (first used on line {line})"
                    )),
                );
            }
        }
        problems
    }

    fn missing_role_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let has = |role| self.hosts.iter().any(|h| h.has_role(role));
        let whole = self.hosts_span();
        let all_roles = "roles: keymanager, gateway, publisher, store, database";
        if !has(Role::KeyManager) {
            problems.push(
                Problem::new(
                    ProblemKind::MissingRole,
                    "no host has the role `keymanager`",
                    whole.clone(),
                )
                .label("no key manager among these hosts")
                .help(format!(
                    "add `keymanager` to a host's roles; every deployment needs one ({all_roles})"
                )),
            );
        }
        if !has(Role::Gateway) {
            let publisher = self.hosts.iter().find(|h| h.has_role(Role::Publisher));
            let problem = match publisher {
                Some(host) => Problem::new(
                    ProblemKind::MissingRole,
                    format!(
                        "the publisher on `{}` has no gateway to publish to",
                        host.name()
                    ),
                    host.role_span(Role::Publisher),
                )
                .label("publisher without a gateway"),
                None => Problem::new(
                    ProblemKind::MissingRole,
                    "no host has the role `gateway`",
                    whole.clone(),
                )
                .label("no gateway among these hosts"),
            };
            problems.push(problem.help(format!("add `gateway` to a host's roles ({all_roles})")));
        }
        if !has(Role::Database) {
            problems.push(
                Problem::new(ProblemKind::MissingRole, "no host has the role `database`", whole)
                    .label("no database host among these hosts")
                    .help(format!(
                        "add a host with roles = [\"database\"] and name it in `database.host` ({all_roles})"
                    )),
            );
        }
        problems
    }

    fn database_host_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let named = self.database.host.get_ref();
        let database_hosts: Vec<&Host> = self
            .hosts
            .iter()
            .filter(|h| h.has_role(Role::Database))
            .collect();
        match self.host(named) {
            None => {
                let known = self
                    .hosts
                    .iter()
                    .map(|h| format!("`{}`", h.name()))
                    .collect::<Vec<_>>()
                    .join(", ");
                problems.push(
                    Problem::new(
                        ProblemKind::DatabaseHost,
                        format!("database.host `{named}` is not the name of a [[hosts]] entry"),
                        self.database.host.span(),
                    )
                    .label("unknown host")
                    .help(format!(
                        "name the host with the `database` role; hosts: {known}"
                    )),
                );
            }
            Some(host) if !host.has_role(Role::Database) => problems.push(
                Problem::new(
                    ProblemKind::DatabaseHost,
                    format!("database.host `{named}` names a host without the `database` role"),
                    self.database.host.span(),
                )
                .label("not a database host")
                .help(format!(
                    "add \"database\" to the roles of `{named}` (line {})",
                    self.origin.line_col(host.roles.span().start).0
                )),
            ),
            Some(_) => {}
        }
        for other in database_hosts.iter().filter(|h| h.name() != named) {
            problems.push(
                Problem::new(
                    ProblemKind::DatabaseHost,
                    format!(
                        "host `{}` has the `database` role but database.host is `{named}`",
                        other.name()
                    ),
                    other.role_span(Role::Database),
                )
                .label("second database host")
                .help("apim-deploy manages one database host: the one named in `database.host`"),
            );
        }
        problems
    }

    fn option_problems(&self) -> Vec<Problem> {
        let options = &self.options;
        match (&options.key_manager_behind_lb, &options.key_manager_url) {
            (Some(behind_lb), None) if *behind_lb.get_ref() => vec![
                Problem::new(
                    ProblemKind::BadOption,
                    "key_manager_behind_lb = true needs key_manager_url",
                    behind_lb.span(),
                )
                .label("no load balancer URL")
                .help("add `key_manager_url = \"https://<load balancer>:<port>/services/\"` to [options]"),
            ],
            (_, Some(url)) if !options.key_manager_behind_lb() => vec![
                Problem::new(
                    ProblemKind::BadOption,
                    "key_manager_url is set but key_manager_behind_lb is not true",
                    url.span(),
                )
                .label("would be ignored")
                .help("set `key_manager_behind_lb = true` to use this load balancer, or remove it"),
            ],
            _ => Vec::new(),
        }
    }

    /// The span used for problems about the host list as a whole: the first `[[hosts]]`
    /// header (or the end of the file when there is none).
    fn hosts_span(&self) -> std::ops::Range<usize> {
        let text = self.origin.text.as_ref();
        match text.find("[[hosts]]") {
            Some(start) => start..start + "[[hosts]]".len(),
            None => text.len()..text.len(),
        }
    }
}

fn host_problems(host: &Host) -> Vec<Problem> {
    let mut problems = Vec::new();
    let roles = host.roles.get_ref();
    if roles.is_empty() {
        problems.push(
            Problem::new(
                ProblemKind::BadRoleList,
                format!("host `{}` has no roles", host.name()),
                host.roles.span(),
            )
            .label("empty")
            .help("roles: keymanager, gateway, publisher, store, database"),
        );
    }
    for (i, role) in roles.iter().enumerate() {
        if roles[..i].iter().any(|r| r.get_ref() == role.get_ref()) {
            problems.push(
                Problem::new(
                    ProblemKind::BadRoleList,
                    format!(
                        "role `{}` is listed twice on host `{}`",
                        role.get_ref(),
                        host.name()
                    ),
                    role.span(),
                )
                .label("listed again")
                .help("each role runs at most once per host"),
            );
        }
    }
    for (table, map) in [
        ("offsets", &host.offsets),
        ("member_ports", &host.member_ports),
    ] {
        for (role, value) in map {
            if !role.is_wso2() || !host.has_role(*role) {
                problems.push(
                    Problem::new(
                        ProblemKind::BadRoleList,
                        format!(
                            "{table} sets `{role}` but host `{}` has no WSO2 role `{role}`",
                            host.name()
                        ),
                        value.span(),
                    )
                    .label("no such node on this host")
                    .help(format!(
                        "{table} keys are roles of this host other than database: {}",
                        host.roles()
                            .filter(|r| r.is_wso2())
                            .map(|r| format!("`{r}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
        }
    }
    for value in host.offsets.values() {
        if *value.get_ref() > MAX_OFFSET {
            problems.push(
                Problem::new(
                    ProblemKind::InvalidValue,
                    format!("port offset {} is too large", value.get_ref()),
                    value.span(),
                )
                .label("out of range")
                .help(format!("offsets are 0-{MAX_OFFSET}")),
            );
        }
    }
    for value in host.member_ports.values() {
        if *value.get_ref() == 0 {
            problems.push(
                Problem::new(
                    ProblemKind::InvalidValue,
                    "member port 0 is not a port",
                    value.span(),
                )
                .label("out of range")
                .help("member ports are 1-65535 (the default is 4000, 4001, ... per host)"),
            );
        }
    }
    problems
}

fn artifact_problems(section: &str, artifact: &Artifact, text: &str) -> Vec<Problem> {
    let header = format!("[{section}]");
    let header_span = text.find(&header).map_or(0..0, |s| s..s + header.len());
    let mut problems = Vec::new();
    match (&artifact.path, &artifact.url) {
        (None, None) => problems.push(
            Problem::new(
                ProblemKind::BadOption,
                format!("[{section}] needs `path` or `url`"),
                header_span.clone(),
            )
            .label("neither path nor url")
            .help("set `path = \"local/file\"` or `url = \"https://...\"`"),
        ),
        (Some(_), Some(url)) => problems.push(
            Problem::new(
                ProblemKind::BadOption,
                format!("[{section}] has both `path` and `url`"),
                url.span(),
            )
            .label("second source")
            .help("keep one of `path` and `url`"),
        ),
        _ => {}
    }
    if let Some(mode) = &artifact.mode
        && *mode.get_ref() == ArtifactMode::Remote
        && artifact.url.is_none()
    {
        problems.push(
            Problem::new(
                ProblemKind::BadOption,
                format!("[{section}] mode = \"remote\" needs `url`"),
                mode.span(),
            )
            .label("hosts download the file themselves")
            .help("set `url`, or use mode = \"push\" to upload a local file"),
        );
    }
    problems
}
