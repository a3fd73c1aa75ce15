//! A handler that runs a plan step's `command` through `sh -c`, as `eod run` does.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{HandlerError, HandlerResult, StepContext};
use crate::store::{MAX_OUTPUT_TAIL, tail};

/// The shell script that runs a step's command (its first argument) so that the command dies
/// with the runner.
///
/// The script leads its own process group. It runs the command in the background with standard
/// input from `/dev/null`, and a watcher that reads the script's standard input, a pipe whose
/// write end only the runner holds. If the runner dies, even by SIGKILL, the watcher reads
/// end-of-file and kills the whole group, so a resumed run never overlaps a command left over
/// from a crashed one. Otherwise the script ends the watcher and exits with the command's status
/// (128 plus the signal number for a command ended by a signal).
const WATCHED_COMMAND: &str = r#"exec 3<&0
sh -c "$1" </dev/null 3<&- &
command=$!
( read -r line <&3; kill -9 0 ) </dev/null &
watcher=$!
exec 3<&-
wait "$command"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
"#;

/// Values passed to every command besides the step's own.
#[derive(Debug, Clone, Default)]
pub struct ShellEnvironment {
    /// The database path, passed as `EOD_DB`.
    pub database: Option<PathBuf>,
}

/// Returns a handler that runs `command` through `sh -c`.
///
/// The command sees `EOD_OPERATION_ID`, `EOD_PROPERTY`, `EOD_BUSINESS_DATE`, `EOD_STEP_CODE`,
/// `EOD_STEP_ORDER`, `EOD_ATTEMPT` and, when set, `EOD_DB`. Its standard output and error are
/// captured together; the last 4 KiB are kept as the step's output. Exit code 0 completes the
/// step; any other exit, a signal, or running past `timeout` fails it with a message naming the
/// cause. On timeout the command's whole process group is sent SIGKILL, and so it is when the
/// runner process dies, so a resumed run never overlaps a command of a crashed one.
pub fn shell_handler(
    command: String,
    timeout: Option<Duration>,
    environment: ShellEnvironment,
) -> impl FnMut(&StepContext<'_>) -> HandlerResult {
    move |context| run_command(&command, timeout, &environment, context)
}

fn run_command(
    command: &str,
    timeout: Option<Duration>,
    environment: &ShellEnvironment,
    context: &StepContext<'_>,
) -> HandlerResult {
    let spawn_error =
        |err: std::io::Error| HandlerError::new(format!("cannot run `sh -c {command}`: {err}"));
    let (mut reader, writer) = std::io::pipe().map_err(spawn_error)?;
    let mut shell = Command::new("sh");
    shell
        .arg("-c")
        .arg(WATCHED_COMMAND)
        .arg("eod-step")
        .arg(command)
        .env("EOD_OPERATION_ID", context.operation.id.to_string())
        .env("EOD_PROPERTY", &context.operation.property)
        .env(
            "EOD_BUSINESS_DATE",
            context.operation.business_date.to_string(),
        )
        .env("EOD_STEP_CODE", &context.step.code)
        .env("EOD_STEP_ORDER", context.step.order.to_string())
        .env("EOD_ATTEMPT", context.attempt().to_string())
        .stdin(Stdio::piped())
        .stdout(writer.try_clone().map_err(spawn_error)?)
        .stderr(writer);
    if let Some(database) = &environment.database {
        shell.env("EOD_DB", database);
    }
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut shell, 0);
    let mut child = shell.spawn().map_err(spawn_error)?;
    // Held until the command has exited: its end-of-file tells the watcher that this process
    // is gone.
    let lifeline = child.stdin.take();
    // The parent's copies of the pipe's write end went with `shell`'s stdio, so the reader sees
    // end-of-file once the command and everything it started have exited.
    drop(shell);

    let (sender, output) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept: Vec<u8> = Vec::new();
        let mut buffer = [0u8; 8192];
        while let Ok(read) = reader.read(&mut buffer) {
            if read == 0 {
                break;
            }
            kept.extend_from_slice(&buffer[..read]);
            if kept.len() > 2 * MAX_OUTPUT_TAIL {
                kept.drain(..kept.len() - MAX_OUTPUT_TAIL);
            }
        }
        let _ = sender.send(kept);
    });

    let began = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(err) => break Err(format!("cannot wait for `{command}`: {err}")),
        }
        if let Some(limit) = timeout
            && began.elapsed() >= limit
        {
            kill_group(&mut child);
            break Err(format!(
                "`{command}` timed out after {} s and was killed",
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    drop(lifeline);
    // A background process that keeps the pipe open must not hang the run.
    let bytes = output
        .recv_timeout(Duration::from_secs(2))
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let output = Some(tail(&text, MAX_OUTPUT_TAIL).to_owned()).filter(|text| !text.is_empty());

    match status {
        Ok(status) if status.success() => Ok(output),
        Ok(status) => {
            let message = match status.code() {
                Some(code) => format!("`{command}` exited with code {code}"),
                None => format!("`{command}` was ended by a signal ({status})"),
            };
            Err(HandlerError { message, output })
        }
        Err(message) => Err(HandlerError { message, output }),
    }
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        // The child leads its own process group, so this reaches everything it started.
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{}", child.id()))
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}
