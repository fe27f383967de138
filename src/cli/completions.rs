//! `apim-deploy completions SHELL` and `apim-deploy man`: shell completions and a
//! man page generated from the clap definitions of this very binary, so they can
//! never name a flag the binary does not have.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::engine::shell::Shell;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

pub fn completions(args: CompletionsArgs, shell: &Shell) -> anyhow::Result<ExitCode> {
    shell.print_always(&completion_script(args.shell))?;
    Ok(ExitCode::SUCCESS)
}

/// The completion script for `which`, as text.
pub fn completion_script(which: CompletionShell) -> String {
    use clap_complete::Shell as S;
    let target = match which {
        CompletionShell::Bash => S::Bash,
        CompletionShell::Zsh => S::Zsh,
        CompletionShell::Fish => S::Fish,
    };
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(target, &mut cmd, "apim-deploy", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub fn man(shell: &Shell) -> anyhow::Result<ExitCode> {
    shell.print_always(&man_page()?)?;
    Ok(ExitCode::SUCCESS)
}

/// The man page (roff): the top command, then a section per subcommand, so one
/// `man apim-deploy` shows every flag.
pub fn man_page() -> anyhow::Result<String> {
    let cmd = super::Cli::command();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    for sub in cmd.get_subcommands() {
        let name = format!("apim-deploy {}", sub.get_name());
        let mut section = Vec::new();
        let sub = sub.clone().bin_name(name.clone());
        clap_mangen::Man::new(sub).render(&mut section)?;
        // Each rendered page opens with its own title line; a section needs none.
        let text = String::from_utf8_lossy(&section);
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with(".TH") && !l.starts_with(".ie") && !l.starts_with(".el"))
            .map(|l| {
                if let Some(heading) = l.strip_prefix(".SH ") {
                    format!(".SS \"{name}: {}\"\n", heading.trim_matches('"'))
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        out.extend_from_slice(body.as_bytes());
    }
    man.render_version_section(&mut out)?;
    Ok(String::from_utf8(out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_know_every_command_and_flag() {
        for which in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let script = completion_script(which);
            for word in [
                "apply",
                "restart",
                "completions",
                "limit",
                "max-unavailable",
            ] {
                assert!(script.contains(word), "{which:?} lacks {word}");
            }
        }
        assert!(completion_script(CompletionShell::Bash).contains("complete -F"));
    }

    #[test]
    fn the_man_page_is_roff_with_every_subcommand() {
        let page = man_page().unwrap();
        assert!(
            page.starts_with(".ie") || page.starts_with(".TH"),
            "{}",
            &page[..80]
        );
        assert!(page.contains(".TH apim-deploy"));
        for word in [
            "apim-deploy plan",
            "apim-deploy restart",
            "\\-\\-limit",
            "Examples:",
        ] {
            assert!(page.contains(word), "the page lacks {word}");
        }
    }
}
