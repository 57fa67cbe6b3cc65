//! A tiny SMTP server that accepts every message and logs the commands and each message's DATA.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// What the fake SMTP server received: the commands, and each message's DATA.
#[derive(Default)]
pub struct SmtpLog {
    pub commands: Vec<String>,
    pub messages: Vec<String>,
}

/// A tiny SMTP server on a random port that accepts everything; returns its port and its log.
pub fn fake_smtp() -> (u16, Arc<Mutex<SmtpLog>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake SMTP server");
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(SmtpLog::default()));
    let shared = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let _ = stream.write_all(b"220 fake.smtp ESMTP\r\n");
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let command = line.trim_end().to_owned();
                shared.lock().unwrap().commands.push(command.clone());
                let verb = command
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                let answer: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250 fake.smtp\r\n",
                    "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                    "DATA" => {
                        let _ = stream.write_all(b"354 go ahead\r\n");
                        let mut data = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == ".\r\n" {
                                break;
                            }
                            data.push_str(&line);
                        }
                        shared.lock().unwrap().messages.push(data);
                        b"250 queued as 1\r\n"
                    }
                    "QUIT" => {
                        let _ = stream.write_all(b"221 bye\r\n");
                        break;
                    }
                    _ => b"502 not implemented\r\n",
                };
                let _ = stream.write_all(answer);
            }
        }
    });
    (port, log)
}
