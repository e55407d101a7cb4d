//! Real git servers on loopback for the network tests: `git daemon` (git://, push enabled) and
//! `git http-backend` behind a minimal HTTP/1.1 bridge that can demand Basic authentication.
//! Both are stopped when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;

/// A free loopback port (another process may take it before use: callers retry).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until_listening(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A program from git's exec path. `git daemon` would run it as a child that outlives the
/// `git` process a test can stop, so the daemon is started directly.
fn git_program(name: &str) -> PathBuf {
    let output = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git is installed");
    let exec_path = String::from_utf8(output.stdout).expect("git's exec path is UTF-8");
    Path::new(exec_path.trim()).join(name)
}

/// `git daemon` serving every repository under `root`, receive-pack enabled.
pub struct GitDaemon {
    child: Child,
    port: u16,
}

impl GitDaemon {
    pub fn start(root: &Path) -> GitDaemon {
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(git_program("git-daemon"))
                .arg("--reuseaddr")
                .arg("--export-all")
                .arg("--enable=receive-pack")
                .arg("--informative-errors")
                .arg("--listen=127.0.0.1")
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", root.display()))
                .arg(root)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("git daemon runs (git is installed)");
            if wait_until_listening(port, &mut child) {
                return GitDaemon { child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("git daemon did not start on a free port");
    }

    /// The git:// URL of `name` (a directory under the root).
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the HTTP bridge saw: one entry per request, with its Authorization header.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub requests: Vec<(String, Option<String>)>,
}

/// `git http-backend` for every repository under `root`, over plain HTTP on loopback; with
/// `basic` set, a request without exactly that user and password gets 401.
pub struct SmartHttp {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl SmartHttp {
    pub fn start(root: &Path, basic: Option<(&str, &str)>) -> SmartHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let expected = basic.map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        let root = root.to_path_buf();
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (root, expected, record) = (root.clone(), expected.clone(), record.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &root, expected.as_deref(), &record);
                });
            }
        });
        SmartHttp { port, seen }
    }

    /// By name: git2 tells credential helpers the host only when it is a name, not an address.
    pub fn url(&self, name: &str) -> String {
        format!("http://localhost:{}/{name}", self.port)
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Request> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            headers.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    let mut request = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        request.body = read_chunked(reader)?;
    } else if let Some(length) = request.header("content-length") {
        let length: usize = length.parse().unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        request.body = body;
    }
    Ok(request)
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size =
            usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if size == 0 {
            let mut trailer = String::new();
            while reader.read_line(&mut trailer)? > 2 {
                trailer.clear();
            }
            return Ok(body);
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        body.extend_from_slice(&chunk[..size]);
    }
}

fn serve(
    stream: TcpStream,
    root: &Path,
    expected: Option<&str>,
    seen: &Mutex<Seen>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let request = read_request(&mut reader)?;
    let authorization = request.header("authorization").map(str::to_string);
    seen.lock().unwrap().requests.push((
        format!("{} {}", request.method, request.target),
        authorization.clone(),
    ));
    let mut stream = stream;
    if expected.is_some() && authorization.as_deref() != expected {
        stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"policy\"\r\n\
              Content-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    let (status, headers, body) = run_backend(root, &request, expected.is_some())?;
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (key, value) in headers {
        head.push_str(&format!("{key}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

type CgiResponse = (String, Vec<(String, String)>, Vec<u8>);

/// Runs `git http-backend` as a CGI script for one request.
fn run_backend(
    root: &Path,
    request: &Request,
    authenticated: bool,
) -> std::io::Result<CgiResponse> {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let mut command = Command::new("git");
    command
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &request.method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_TYPE", request.header("content-type").unwrap_or(""))
        .env("CONTENT_LENGTH", request.body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(encoding) = request.header("content-encoding") {
        command.env("HTTP_CONTENT_ENCODING", encoding);
    }
    // http-backend allows pushes only from an authenticated user, or when told to.
    if authenticated {
        command.env("REMOTE_USER", "tester");
    } else {
        command.env("GIT_CONFIG_COUNT", "1");
        command.env("GIT_CONFIG_KEY_0", "http.receivepack");
        command.env("GIT_CONFIG_VALUE_0", "true");
    }
    let mut child = command.spawn()?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let body = request.body.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let output = child.wait_with_output()?;
    let _ = writer.join();
    Ok(parse_cgi(&output.stdout))
}

fn parse_cgi(output: &[u8]) -> CgiResponse {
    let split = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, at + 4))
        .or_else(|| {
            output
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|at| (at, at + 2))
        })
        .unwrap_or((output.len(), output.len()));
    let head = String::from_utf8_lossy(&output[..split.0]);
    let mut status = "200 OK".to_string();
    let mut headers = Vec::new();
    for line in head.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.eq_ignore_ascii_case("status") {
            status = value.trim().to_string();
        } else {
            headers.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    (status, headers, output[split.1..].to_vec())
}

/// A bare repository under `root` named `name`, holding `file` with `contents` on `main`.
pub fn bare_repository(root: &Path, name: &str, file: &str, contents: &str) -> PathBuf {
    let path = root.join(name);
    hessra_console::gitops::init_bare_with_file(&path, file, contents, "initial policy").unwrap();
    path
}
