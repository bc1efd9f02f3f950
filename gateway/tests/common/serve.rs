//! Running the compiled `zapin` binary in tests: `serve` in the background (announce line, HTTP
//! calls, SIGTERM, exit status and log), and one-shot subcommands with a time limit.

use std::io::{BufRead, BufReader, Read as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const ZAPIN: &str = env!("CARGO_BIN_EXE_zapin");
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A `zapin` command with an empty environment, so the caller's variables cannot leak in.
pub fn zapin(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(ZAPIN);
    cmd.args(args).env_clear().envs(env.iter().copied());
    cmd
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `zapin args` to completion, killing it after `limit`.
pub fn run_for(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Finished {
    let mut child = zapin(args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_for(&mut child, limit)
        .unwrap_or_else(|| panic!("zapin {args:?} did not finish within {limit:?}"));
    Finished {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Waits for `child` at most `limit`; kills it and returns `None` when it does not exit.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        // Process exit has no async notification here; a short poll of a local syscall.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `zapin serve`. Killed on drop if the test fails before stopping it.
pub struct Serve {
    child: Option<Child>,
    pub url: String,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Serve {
    /// Starts `zapin serve` with `env` (plus `SERVER_PORT=0` and a loopback listener) and waits
    /// for its announce line.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let mut env = env.to_vec();
        env.push(("SERVER_PORT", "0"));
        env.push(("ZAPIN_LISTEN_HOST", "127.0.0.1"));
        let mut child = zapin(&["serve"], &env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr_pipe.read_to_string(&mut s);
            s
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut serve = Self {
            child: Some(child),
            url: String::new(),
            stderr: Some(stderr),
        };
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(line) => {
                serve.url = line
                    .strip_prefix("zapin listening on ")
                    .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
                    .to_owned();
            }
            Err(_) => {
                let (status, log) = serve.kill();
                panic!("zapin serve did not announce its address ({status:?}):\n{log}");
            }
        }
        serve
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM (graceful shutdown) without waiting.
    pub fn sigterm(&self) {
        let pid = self.pid().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success());
    }

    /// Waits for the process to exit by itself (after [`Serve::sigterm`]): its status and log.
    pub fn wait(mut self, limit: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let status = wait_for(&mut child, limit);
        let log = self.stderr.take().unwrap().join().unwrap();
        match status {
            Some(status) => (status, log),
            None => panic!("zapin serve did not exit within {limit:?}:\n{log}"),
        }
    }

    /// SIGTERM and wait: the exit status and the log.
    pub fn stop(self) -> (ExitStatus, String) {
        self.sigterm();
        self.wait(STARTUP_TIMEOUT)
    }

    /// SIGKILL.
    pub fn kill(mut self) -> (Option<ExitStatus>, String) {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let status = child.wait().ok();
        (status, self.stderr.take().unwrap().join().unwrap())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
