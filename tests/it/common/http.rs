//! A loopback HTTP/1.1 server for download tests: good, slow, broken, redirecting, failing and
//! non-image answers, with a request counter per path. Only std: one thread per connection,
//! `Connection: close` on every answer.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Routes (`<n>` is any token, used to make URLs distinct):
/// * `/img/<n>.jpg`: 200 with a JPEG made for `n` (`jpeg(n)`); `/big/<n>.jpg` a 2048x1536 one;
/// * `/delay/<n>.jpg`: the same after 150 ms; `/slow/<n>`: headers after 5 s;
/// * `/redirect/<n>`: 302 to `/img/<n>.jpg`; `/loop/<n>`: redirects to itself;
/// * `/html/<n>`: 200 `text/html`; `/404/<n>`, `/500/<n>`: those statuses;
/// * `/flaky/<n>`: 503 on the first request, then the JPEG;
/// * `/broken/<n>`: declares 100000 bytes, sends 100 and closes.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl TestServer {
    /// Starts the server on a free port.
    pub fn start(jpeg: fn(&str, bool) -> Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let c = counts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let c = c.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &c, jpeg);
                });
            }
        });
        TestServer { base, counts }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// How many requests `path` received.
    pub fn count(&self, path: &str) -> usize {
        self.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn serve(
    mut stream: TcpStream,
    counts: &Mutex<HashMap<String, usize>>,
    jpeg: fn(&str, bool) -> Vec<u8>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let n = {
        let mut m = counts.lock().unwrap();
        let e = m.entry(path.clone()).or_insert(0);
        *e += 1;
        *e
    };
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
    let (route, arg) = (parts[0], parts.get(1).copied().unwrap_or(""));
    let ok = |s: &mut TcpStream, ctype: &str, body: &[u8]| -> std::io::Result<()> {
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        s.write_all(body)
    };
    let status = |s: &mut TcpStream, code: u16, extra: &str| -> std::io::Result<()> {
        write!(
            s,
            "HTTP/1.1 {code} X\r\nContent-Length: 0\r\n{extra}Connection: close\r\n\r\n"
        )
    };
    match route {
        "img" => ok(&mut stream, "image/jpeg", &jpeg(arg, false)),
        "big" => ok(&mut stream, "image/jpeg", &jpeg(arg, true)),
        "delay" => {
            std::thread::sleep(Duration::from_millis(150));
            ok(&mut stream, "image/jpeg", &jpeg(arg, false))
        }
        "slow" => {
            std::thread::sleep(Duration::from_secs(5));
            ok(&mut stream, "image/jpeg", &jpeg(arg, false))
        }
        "redirect" => status(&mut stream, 302, &format!("Location: /img/{arg}.jpg\r\n")),
        "loop" => status(&mut stream, 302, &format!("Location: /loop/{arg}\r\n")),
        "html" => ok(&mut stream, "text/html", b"<html><body>gone</body></html>"),
        "404" => status(&mut stream, 404, ""),
        "500" => status(&mut stream, 500, ""),
        "flaky" if n == 1 => status(&mut stream, 503, ""),
        "flaky" => ok(&mut stream, "image/jpeg", &jpeg(arg, false)),
        "broken" => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
            )?;
            stream.write_all(&jpeg(arg, false)[..100])?;
            stream.flush()
        }
        _ => status(&mut stream, 404, ""),
    }
}
