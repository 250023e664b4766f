//! `flashgate completions SHELL` and `flashgate man`: generated from the same clap definitions
//! as the parser, so they never drift from the commands they describe.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {}

pub fn completions(args: CompletionsArgs, mut command: clap::Command) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "flashgate", &mut script);
    write_stdout(&script)
}

/// One page for the whole tool: the top-level synopsis, then each subcommand's options, so
/// `man flashgate` answers "what does `run --sim` do" without a second page per subcommand.
pub fn man(_args: ManArgs, command: clap::Command) -> anyhow::Result<ExitCode> {
    let mut page = Vec::new();
    render_page(command, &mut page).context("rendering the man page")?;
    write_stdout(&page)
}

fn render_page(command: clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut command = command;
    command.build();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        writeln!(out, ".SH \"FLASHGATE {}\"", name.to_uppercase())?;
        let mut page = Vec::new();
        let sub_man = clap_mangen::Man::new(sub.clone().bin_name(format!("flashgate {name}")));
        sub_man.render_synopsis_section(&mut page)?;
        sub_man.render_options_section(&mut page)?;
        sub_man.render_subcommands_section(&mut page)?;
        // Each part opens with its own `.SH`; inside this page they are subsections.
        let text = String::from_utf8_lossy(&page).replace(".SH ", ".SS ");
        out.write_all(text.as_bytes())?;
    }
    man.render_version_section(out)?;
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
