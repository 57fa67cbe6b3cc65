//! The servers under load run in processes of their own (this same binary, re-executed): the bot on
//! the library code `aofctl` runs, or the bare actix-web handler. A separate process gives honest
//! start-up times and a resident-memory figure of the server alone.

use anyhow::{bail, Context as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// When the process was spawned.
    pub spawned: Instant,
}

/// A loopback port nobody listens on now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn spawn(args: &[&str], port: u16, log: &Path) -> anyhow::Result<Server> {
    let exe = std::env::current_exe().context("where is this binary")?;
    let out = std::fs::File::create(log).with_context(|| log.display().to_string())?;
    let spawned = Instant::now();
    let child = Command::new(exe)
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("AOF_LOAD_SERVER_LOG").unwrap_or("warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("starting the server process")?;
    Ok(Server {
        child,
        address: format!("http://127.0.0.1:{port}"),
        spawned,
    })
}

impl Server {
    /// The bot on `config` (which must say `port`), logging to `log`.
    pub fn bot(config: &Path, port: u16, log: &Path) -> anyhow::Result<Server> {
        let config = config.to_str().context("a UTF-8 config path")?;
        spawn(&["serve", "--config", config], port, log)
    }

    /// The bare actix-web handler on `port`.
    pub fn bare(port: u16, log: &Path) -> anyhow::Result<Server> {
        spawn(&["bare", "--port", &port.to_string()], port, log)
    }

    /// Polls `path` every 2 ms until it answers 200; the time since the spawn.
    pub async fn ready(&mut self, path: &str, within: Duration) -> anyhow::Result<Duration> {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(2))
            .finish();
        let url = format!("{}{path}", self.address);
        loop {
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return Ok(self.spawned.elapsed());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited ({status}) before {path} answered 200");
            }
            if self.spawned.elapsed() > within {
                bail!("{path} did not answer 200 within {within:?}");
            }
            actix_web::rt::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The server's resident memory, in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc/PID/status")
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server with SIGKILL (a crash: nothing of it runs after the signal) and waits
    /// for it to be gone.
    pub fn crash(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Stops the server as an operator would (SIGTERM), killing it after 10 s.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The child side of [`Server::bare`]: an actix-web server whose only handler answers 200, with the
/// same worker count the bot uses (one per core).
pub fn run_bare(port: u16) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        actix_web::HttpServer::new(|| {
            // The body is read (as the bot reads it), so that the connection is kept alive.
            actix_web::App::new().default_service(actix_web::web::to(
                |_: actix_web::web::Bytes| async { actix_web::HttpResponse::Ok().finish() },
            ))
        })
        .bind(("127.0.0.1", port))?
        .run()
        .await?;
        Ok(())
    })
}
