//! The console at scale: the generated 10,000-client policy (hierarchies six deep, 100 realms ×
//! 100 assignments) and a full audit feed. Measures start-up to first frame (and to the policy
//! on screen), frame render time on each screen at 120×40, filter keystroke to frame, and
//! resident memory. Each time is also given
//! as a ratio to a floor measured in the same run: `policy::load` of the same text for start-up
//! (the parse and validation any client must do), and drawing a full-screen paragraph for frames
//! (what the terminal layer costs whatever we draw).
//!
//! Targets (issue 6): first frame ≤ 500 ms, median frame ≤ 8 ms, filter ≤ 16 ms, RSS ≤ 200 MB.
//!
//! Run: `cargo bench --bench console`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hessra_console::console::ScreenId;
use hessra_console::console::jobs::{self, Env, GitView, JobResult, ServerStatus};
use hessra_console::console::{App, Context, ui};
use hessra_console::gitops::RepoStatus;
use hessra_console::policy::{self, generate};
use hessra_console::server::AuditEvent;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::widgets::Paragraph;

const NOW: i64 = 1_790_000_000;
const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;

fn context(text: &str) -> Context {
    Context {
        has_repo: true,
        server: Some(("https://127.0.0.1:4443".into(), true)),
        operator: Some("uri:urn:company:ops".into()),
        ..Context::new(PathBuf::from("/bench/clients.toml"), text.to_string(), NOW)
    }
}

fn new_terminal() -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("test backend")
}

fn draw(terminal: &mut Terminal<TestBackend>, app: &App) {
    terminal.draw(|frame| ui::render(frame, app)).expect("draw");
}

/// Median and worst of `runs` timings of `f`.
fn timed(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[runs - 1])
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// What the console holds after a while: git status, a token, a full audit feed.
fn populate(app: &mut App, text: &str) {
    let edited = text.replacen(
        "operations = [\"read\"]",
        "operations = [\"read\", \"write\"]",
        1,
    );
    app.handle_result(JobResult::Git(Ok(GitView {
        status: RepoStatus {
            branch: "main".into(),
            upstream: Some("origin/main".into()),
            file: "clean".into(),
            ahead: 0,
            behind: 0,
            head: Some("0123456789abcdef0123456789abcdef01234567".into()),
        },
        head_text: Some(edited.clone()),
        working_text: Some(text.to_string()),
        text_diff: String::new(),
        revocations_file: "missing".into(),
        keys_file: "missing".into(),
        new_revocations: Vec::new(),
        revocation_errors: Vec::new(),
        revocation_changes: Vec::new(),
        revocations_diff: String::new(),
    })));
    // What the ParsePolicy job the status queued would report.
    // As the job does: the parsed document is dropped before the result is handed over.
    let head = policy::load(&edited, NOW)
        .expect("edited policy parses")
        .policy;
    app.handle_result(JobResult::HeadParsed {
        policy: Ok(head),
        text: edited,
    });
    app.handle_result(JobResult::ServerStatus(Ok(ServerStatus {
        response_msg: "Server status".into(),
        listen: "127.0.0.1:4443".into(),
        policy_source: "git origin.git branch main".into(),
        policy_revision: "0123456789abcdef0123456789abcdef01234567".into(),
        policy_loaded_at: NOW - 5,
        clients: 10_000,
        last_reload_error: None,
        requests: 2_000,
        allowed: 1_500,
        denied: 500,
        started_at: NOW - 60,
        audit_file: None,
        audit_key: None,
        keys: Vec::new(),
        key_set_error: None,
        missing_private_keys: Vec::new(),
    })));
    let events = (0..2_000u64)
        .map(|seq| AuditEvent {
            seq: seq + 1,
            time: NOW - 2_000 + seq as i64,
            caller: Some(format!("uri:urn:org{}:l1", seq % 990)),
            auth: "mtls".into(),
            endpoint: "/request_token".into(),
            resource: Some("data".into()),
            operation: Some(if seq % 3 == 0 { "write" } else { "read" }.into()),
            result: if seq % 4 == 0 { "deny" } else { "allow" }.into(),
            reason: "granted by policy".into(),
            revocation_id: None,
            expires_at: None,
        })
        .collect();
    app.handle_result(JobResult::ServerAudit(Ok((events, 2_000))));
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn main() {
    let text = generate::policy(generate::Shape::LARGE);
    let rss_before = rss_kib("VmRSS:");

    let mut app = App::new(context(&text));
    populate(&mut app, &text);
    let mut terminal = new_terminal();
    for screen in ScreenId::ALL {
        app.go_to(screen);
        draw(&mut terminal, &app);
    }
    let rss_after = rss_kib("VmRSS:");
    // What is live, as opposed to freed but kept by the allocator (the HEAD parse's transient
    // toml_edit tree): glibc hands free pages back on malloc_trim.
    // SAFETY: malloc_trim only releases free heap memory; glibc on Linux provides it.
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    unsafe { malloc_trim(0) };
    let rss_trimmed = rss_kib("VmRSS:");

    // Start-up to first frame, against parsing and validating the same text. A terminal opens
    // the console with `App::start`: the policy is read on a worker and the first frame says
    // so. `App::new` reads it before returning: that is start-up to the policy on screen.
    let (first_frame, first_worst) = timed(7, || {
        let app = App::start(context(&text));
        let mut terminal = new_terminal();
        draw(&mut terminal, &app);
        black_box(&app);
    });
    let (on_screen, on_screen_worst) = timed(7, || {
        let app = App::new(context(&text));
        let mut terminal = new_terminal();
        draw(&mut terminal, &app);
        black_box(&app);
    });
    let (load, _) = timed(7, || {
        black_box(policy::load(&text, NOW).expect("generated policy parses"));
    });
    println!(
        "first frame (App::start + draw, 10,000 clients): median {} (worst {}), {:.3}× policy::load ({})  target ≤ 500 ms",
        ms(first_frame),
        ms(first_worst),
        first_frame.as_secs_f64() / load.as_secs_f64(),
        ms(load)
    );
    println!(
        "policy on screen (App::new + draw, 10,000 clients): median {} (worst {}), {:.2}× policy::load",
        ms(on_screen),
        ms(on_screen_worst),
        on_screen.as_secs_f64() / load.as_secs_f64(),
    );

    // The floor: a full-screen paragraph through the same backend.
    let filler = "x".repeat(WIDTH as usize * HEIGHT as usize);
    let (floor, _) = timed(201, || {
        terminal
            .draw(|frame| frame.render_widget(Paragraph::new(filler.as_str()), frame.area()))
            .expect("draw");
    });
    println!("frame floor (full-screen paragraph): median {}", ms(floor));
    let mut medians = Vec::new();
    for screen in ScreenId::ALL {
        app.go_to(screen);
        let (median, worst) = timed(101, || draw(&mut terminal, &app));
        medians.push(median);
        println!(
            "frame {:<16} median {} (worst {}), {:.1}× floor  target ≤ 8 ms",
            app.screens().get(screen).title(),
            ms(median),
            ms(worst),
            median.as_secs_f64() / floor.as_secs_f64()
        );
    }

    // Filter: one keystroke (the list or tree re-filtered) to the next frame.
    for screen in [ScreenId::Clients, ScreenId::Delegations, ScreenId::Server] {
        app.go_to(screen);
        app.handle_key(key('/'));
        let mut times = Vec::new();
        for round in 0..20 {
            for c in ["org5", "l1:l2", "deny"][round % 3].chars() {
                let start = Instant::now();
                app.handle_key(key(c));
                draw(&mut terminal, &app);
                times.push(start.elapsed());
            }
            for _ in 0..5 {
                app.handle_key(KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE));
            }
        }
        app.handle_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        times.sort();
        println!(
            "filter keystroke → frame on {:<12} median {} (worst {})  target ≤ 16 ms",
            app.screens().get(screen).title(),
            ms(times[times.len() / 2]),
            ms(times[times.len() - 1])
        );
    }

    // An edit at this size: the UI thread hands the edit to a worker (which applies it and
    // re-reads the whole policy) and installs the result; input waits meanwhile, drawing does not.
    app.go_to(ScreenId::Clients);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let env = Env::new(
        PathBuf::from("/bench/clients.toml"),
        None,
        None,
        None,
        runtime.handle().clone(),
    );
    // What start-up queued (HEAD's parse, after the git status) has run by the time anyone edits.
    for (id, job) in app.take_jobs() {
        let results = std::cell::RefCell::new(Vec::new());
        jobs::execute(job, &env, &|r| results.borrow_mut().push(r));
        for result in results.into_inner() {
            app.handle_result(result);
        }
        app.job_done(id);
    }
    let (mut on_ui, mut on_worker) = (Vec::new(), Vec::new());
    for round in 0..10 {
        let start = Instant::now();
        if round % 2 == 0 {
            app.apply_edit(policy::Edit::Grant {
                identity: "uri:urn:org500:l1:l2".into(),
                resource: "data".into(),
                operation: "write".into(),
            });
        } else {
            app.dispatch(hessra_console::console::keymap::Action::Undo);
        }
        let mut ui = start.elapsed();
        for (id, job) in app.take_jobs() {
            let results = std::cell::RefCell::new(Vec::new());
            let start = Instant::now();
            jobs::execute(job, &env, &|r| results.borrow_mut().push(r));
            on_worker.push(start.elapsed());
            let start = Instant::now();
            for result in results.into_inner() {
                app.handle_result(result);
            }
            app.job_done(id);
            draw(&mut terminal, &app);
            ui += start.elapsed();
        }
        on_ui.push(ui);
    }
    assert!(!app.policy_pending());
    on_ui.sort();
    on_worker.sort();
    println!(
        "edit or undo: UI thread median {} (worst {}), {:.3}× policy::load; on the worker median {} (worst {})  target ≤ 16 ms on the UI thread",
        ms(on_ui[on_ui.len() / 2]),
        ms(on_ui[on_ui.len() - 1]),
        on_ui[on_ui.len() / 2].as_secs_f64() / load.as_secs_f64(),
        ms(on_worker[on_worker.len() / 2]),
        ms(on_worker[on_worker.len() - 1]),
    );

    println!(
        "resident memory: {:.0} MB after start-up, HEAD's policy, a full audit feed and every screen drawn; {:.0} MB live after malloc_trim ({:.0} MB before the console)  target ≤ 150 MB",
        rss_after as f64 / 1024.0,
        rss_trimmed as f64 / 1024.0,
        rss_before as f64 / 1024.0,
    );
}
